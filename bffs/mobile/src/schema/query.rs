use async_graphql::{Context, ID, Object, Result};
use bff_server::error::BffError;
use bff_server::graphql::Tracked;

use super::dashboard::MobileDashboard;
use super::product::{PAGE_SIZE, ProductPage, ProductView};
use super::{RequestScope, selected};

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The signed-in viewer's dashboard. UNAUTHENTICATED without a token.
    async fn dashboard(&self, ctx: &Context<'_>) -> Result<MobileDashboard> {
        let viewer = RequestScope::of(ctx).viewer()?;
        Ok(MobileDashboard::load(ctx, &viewer.user_id).await)
    }

    /// 20 items a page.
    async fn products(
        &self,
        ctx: &Context<'_>,
        category_id: ID,
        #[graphql(default = 1)] page: i32,
    ) -> Result<ProductPage> {
        let service_page = u32::try_from(page)
            .ok()
            .filter(|page| *page >= 1)
            .ok_or_else(|| BffError::BadUserInput("page must be at least 1".into()))?;
        // `page` alone needs no call.
        let wanted = selected(&ctx.field());
        if !wanted
            .iter()
            .any(|name| matches!(*name, "items" | "hasNextPage"))
        {
            return Ok(ProductPage::empty(page));
        }
        let scope = RequestScope::of(ctx);
        let found = scope
            .downstream
            .products
            .by_category(&scope.ctx, &category_id, service_page, PAGE_SIZE)
            .await?;
        Ok(ProductPage::new(page, found))
    }

    /// A product's trimmed view; null when there is no such product.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Tracked<ProductView>>> {
        let scope = RequestScope::of(ctx);
        let product = scope.products().load_one(id.to_string()).await?;
        Ok(product.map(|product| Tracked(ProductView(product))))
    }
}
