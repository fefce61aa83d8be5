use async_graphql::{Context, ID, Object, Result, SimpleObject};
use bff_server::error::BffError;
use bff_server::graphql::Tracked;
use futures::future::OptionFuture;

use super::checkout::{CartItemInput, Checkout};
use super::dashboard::WebDashboard;
use super::product::Product;
use super::user::UserProfile;
use super::{RequestScope, list_size};

/// Largest page of the product list.
const MAX_PAGE: i32 = 50;

pub struct QueryRoot;

// Each root field's work is boxed: async-graphql boxes (copies) the future
// of whichever root field runs, and that future is as large as the largest
// root field's (2.7% of the instructions of a product page, 0.5% of a
// dashboard, by `bench --callgrind`). A `//` comment: doc comments here
// would become the Query type's description in the schema.
#[Object(name = "Query")]
impl QueryRoot {
    /// The signed-in viewer (from the bearer token). UNAUTHENTICATED without one.
    async fn me(&self, ctx: &Context<'_>) -> Result<Tracked<UserProfile>> {
        let scope = RequestScope::of(ctx);
        let viewer = scope.viewer()?;
        let ids = [viewer.user_id.as_str()];
        let mut users = Box::pin(scope.downstream.users.lookup(&scope.ctx, &ids)).await?;
        users
            .remove(viewer.user_id.as_str())
            .map(|user| Tracked(UserProfile(user)))
            .ok_or_else(|| BffError::NotFound("user".into()).into())
    }

    /// The signed-in viewer's dashboard.
    async fn dashboard(&self, ctx: &Context<'_>) -> Result<WebDashboard> {
        let scope = RequestScope::of(ctx);
        let viewer = scope.viewer()?;
        let field = ctx.field();
        Ok(Box::pin(WebDashboard::load(scope, &field, &viewer.user_id)).await)
    }

    /// Auth optional: inWishlist and personalizedRecommendations need a viewer.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Tracked<Product>>> {
        let scope = RequestScope::of(ctx);
        let product = Box::pin(scope.products().load_one(id.to_string())).await?;
        Ok(product.map(Product::tracked))
    }

    /// A category's products, `first` (at most 50) at a time, after the cursor
    /// of the last product already shown.
    async fn products(
        &self,
        ctx: &Context<'_>,
        category_id: ID,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> Result<ProductConnection> {
        let first = list_size(first, MAX_PAGE)?;
        if first == 0 {
            return Err(BffError::BadUserInput("first must be at least 1".into()).into());
        }
        // u64: the position after the largest u32 cursor must not overflow.
        let start = match after {
            Some(cursor) => u64::from(decode_cursor(&cursor)?) + 1,
            None => 0,
        };
        let scope = RequestScope::of(ctx);
        let products = &scope.downstream.products;

        // The product service pages by (page, limit). With limit = first, the
        // window [start, start + first) spans at most two of its pages.
        let page_index = start / u64::from(first);
        // The service numbers pages with u32; the tail (`page + 1`) must fit too.
        let (Ok(page), Ok(_)) = (u32::try_from(page_index + 1), u32::try_from(page_index + 2))
        else {
            return Err(BffError::BadUserInput("invalid cursor".into()).into());
        };
        let skip = (start % u64::from(first)) as usize;
        let (head, tail) = Box::pin(async {
            tokio::join!(
                products.by_category(&scope.ctx, &category_id, page, first),
                OptionFuture::from((skip > 0).then(|| products.by_category(
                    &scope.ctx,
                    &category_id,
                    page + 1,
                    first
                ))),
            )
        })
        .await;
        let head = head?;
        let mut items = head.items;
        if let Some(tail) = tail {
            items.extend(tail?.items);
        }
        let edges: Vec<ProductEdge> = items
            .into_iter()
            .skip(skip)
            .take(first as usize)
            .zip(start..)
            .map(|(product, index)| ProductEdge {
                cursor: encode_cursor(index),
                node: Product(product.into()),
            })
            .collect();
        let shown = start + edges.len() as u64;
        Ok(ProductConnection {
            page_info: PageInfo {
                has_next_page: shown < head.total.max(0) as u64,
                end_cursor: edges.last().map(|edge| edge.cursor.clone()),
            },
            total_count: head.total,
            edges,
        })
    }

    /// Initialise checkout for the signed-in viewer.
    async fn checkout(&self, ctx: &Context<'_>, items: Vec<CartItemInput>) -> Result<Checkout> {
        let viewer = RequestScope::of(ctx).viewer()?;
        Box::pin(Checkout::initialise(ctx, &viewer.user_id, &items)).await
    }
}

/// A page of products.
#[derive(SimpleObject)]
pub(crate) struct ProductConnection {
    edges: Vec<ProductEdge>,
    page_info: PageInfo,
    /// Products in the whole category.
    total_count: i64,
}

#[derive(SimpleObject)]
pub(crate) struct ProductEdge {
    /// Opaque; pass as `after` to get the products that follow this one.
    cursor: String,
    node: Product,
}

#[derive(SimpleObject)]
pub(crate) struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

const CURSOR_PREFIX: &str = "p1:";

/// Cursors are opaque to clients (hex of a versioned position) so the paging
/// scheme can change without breaking them.
fn encode_cursor(index: u64) -> String {
    format!("{CURSOR_PREFIX}{index}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(cursor: &str) -> Result<u32, BffError> {
    let invalid = || BffError::BadUserInput("invalid cursor".into());
    if cursor.len() > 64 || !cursor.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(CURSOR_PREFIX)
        .and_then(|index| index.parse().ok())
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for index in [0, 19, 4_000_000] {
            assert_eq!(
                decode_cursor(&encode_cursor(index)).ok(),
                Some(index as u32)
            );
        }
        for bad in ["", "zz", "7031", "70313a2d31", "not a cursor"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
