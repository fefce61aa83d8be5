//! The viewer's dashboard: one parallel round for the parts the client asked
//! for (profile, orders, recommendations, analytics), then ONE batched round
//! for every product those parts show.

use bff_server::graphql::Tracked;
use std::sync::Arc;

use async_graphql::context::SelectionField;
use async_graphql::{Object, Result};
use downstream::models;
use downstream::{DownstreamError, IdMap};
use futures::future::{OptionFuture, join4};

use super::money::Money;
use super::order::Order;
use super::product::Product;
use super::user::UserProfile;
use super::{MAX_LIST, ProductMap, RequestScope, list_size};

const DEFAULT_ORDERS: i32 = 10;
const DEFAULT_RECOMMENDATIONS: i32 = 10;

type Part<T> = Option<Result<T, DownstreamError>>;

pub(crate) struct WebDashboard {
    user: Part<Arc<models::User>>,
    orders: Part<Vec<Arc<models::Order>>>,
    recommendations: Part<Vec<Arc<models::Recommendation>>>,
    analytics: Part<Arc<models::UserAnalytics>>,
    /// Every product the orders and recommendations show; `None` when the
    /// client selected no product field below them.
    products: Option<ProductMap>,
}

/// What the client selected under `dashboard`, so nothing else is fetched.
#[derive(Default)]
struct Selection {
    user: bool,
    /// The largest `first` over all `orders` selections (aliases included).
    orders: Option<u32>,
    order_products: bool,
    recommendations: Option<u32>,
    recommendation_products: bool,
    analytics: bool,
}

impl Selection {
    /// Read ahead from the `dashboard` field (fragments looked through;
    /// async-graphql has already dropped what `@skip`/`@include` leave out).
    fn of(field: &SelectionField<'_>) -> Self {
        let mut selection = Selection::default();
        for part in field.selection_set() {
            match part.name() {
                "user" => selection.user = true,
                "analytics" => selection.analytics = true,
                "orders" => {
                    let first = first_argument(&part, DEFAULT_ORDERS);
                    selection.orders = selection.orders.max(first);
                    selection.order_products |= has_path(&part, &["items", "product"]);
                }
                "recommendations" => {
                    let first = first_argument(&part, DEFAULT_RECOMMENDATIONS);
                    selection.recommendations = selection.recommendations.max(first);
                    selection.recommendation_products |= has_path(&part, &["product"]);
                }
                _ => {}
            }
        }
        selection
    }
}

/// The field's `first` argument (variables resolved; `default`, the
/// resolver's own, when not given); `None` when it is out of range: the
/// field's own resolver reports that as BAD_USER_INPUT, and refused input
/// must cost no downstream call.
fn first_argument(field: &SelectionField<'_>, default: i32) -> Option<u32> {
    let arguments = field.arguments().ok()?;
    let first = match arguments.iter().find(|(name, _)| name.as_str() == "first") {
        Some((_, value)) => match value {
            async_graphql::Value::Number(number) => i32::try_from(number.as_i64()?).ok()?,
            _ => return None,
        },
        None => default,
    };
    list_size(first, MAX_LIST).ok()
}

fn has_path(field: &SelectionField<'_>, path: &[&str]) -> bool {
    let Some((head, rest)) = path.split_first() else {
        return true;
    };
    field
        .selection_set()
        .any(|child| child.name() == *head && has_path(&child, rest))
}

impl WebDashboard {
    /// Loads what `field` (a `dashboard` field) selects.
    pub(crate) async fn load(
        scope: &RequestScope,
        field: &SelectionField<'_>,
        user_id: &str,
    ) -> Self {
        let selection = Selection::of(field);
        let downstream = &scope.downstream;
        let rc = &scope.ctx;

        // Each call boxed: inline, the four calls made this future 12 KB,
        // copied whenever it moved (BENCHMARKS.md, "One GraphQL pipeline").
        let user = OptionFuture::from(selection.user.then(|| {
            Box::pin(async {
                let ids = [user_id];
                let mut found = downstream.users.lookup(rc, &ids).await?;
                found.remove(user_id).ok_or(DownstreamError::NotFound {
                    service: downstream::Service::User,
                })
            })
        }));
        let orders = OptionFuture::from(selection.orders.map(|first| {
            Box::pin(async move {
                let orders = downstream.orders.for_user(rc, user_id, first).await?;
                Ok(orders.into_iter().map(Arc::new).collect::<Vec<_>>())
            })
        }));
        let recommendations = OptionFuture::from(selection.recommendations.map(|first| {
            Box::pin(async move {
                let recommendations = downstream
                    .recommendations
                    .for_user(rc, user_id, first)
                    .await?;
                Ok(recommendations
                    .into_iter()
                    .map(Arc::new)
                    .collect::<Vec<_>>())
            })
        }));
        let analytics = OptionFuture::from(selection.analytics.then(|| {
            Box::pin(async { Ok(Arc::new(downstream.users.analytics(rc, user_id).await?)) })
        }));
        let (user, orders, recommendations, analytics) =
            join4(user, orders, recommendations, analytics).await;

        let mut product_ids: Vec<&str> = Vec::new();
        if selection.order_products
            && let Some(Ok(orders)) = &orders
        {
            let items = orders.iter().flat_map(|order| &order.items);
            product_ids.extend(items.map(|item| item.product_id.as_str()));
        }
        if selection.recommendation_products
            && let Some(Ok(recommendations)) = &recommendations
        {
            product_ids.extend(recommendations.iter().map(|r| r.product_id.as_str()));
        }
        let products = if product_ids.is_empty() {
            (selection.order_products || selection.recommendation_products)
                .then(|| Ok(Arc::new(IdMap::default())))
        } else {
            // One batch already: straight to the product cache, without the
            // DataLoader's queueing and per-request memo.
            product_ids.sort_unstable();
            product_ids.dedup();
            let products = Box::pin(downstream.products.lookup(rc, &product_ids)).await;
            Some(products.map(Arc::new))
        };

        Self {
            user,
            orders,
            recommendations,
            analytics,
            products,
        }
    }
}

/// The recommendations to show, with their products when those were fetched;
/// a recommended product the catalogue no longer has is dropped.
fn recommended<'a>(
    recommendations: &'a [Arc<models::Recommendation>],
    products: Option<&'a Arc<IdMap<Arc<models::Product>>>>,
) -> impl Iterator<Item = Recommendation> + 'a {
    recommendations.iter().filter_map(move |recommendation| {
        let product = match products {
            Some(products) => Some(Arc::clone(
                products.get(recommendation.product_id.as_str())?,
            )),
            None => None,
        };
        Some(Recommendation {
            recommendation: Arc::clone(recommendation),
            product,
        })
    })
}

/// A part that was fetched because it was selected; resolvers of unselected
/// parts never run.
fn fetched<T: Clone>(part: &Part<T>) -> Result<T> {
    match part {
        Some(result) => result.clone().map_err(Into::into),
        None => Err(async_graphql::Error::new(
            "dashboard part was not prefetched",
        )),
    }
}

#[Object]
impl WebDashboard {
    /// The viewer's profile. Null, with an error, when the user service fails.
    async fn user(&self) -> Result<Option<Tracked<UserProfile>>> {
        fetched(&self.user).map(|user| Some(Tracked(UserProfile(user))))
    }

    /// The most recent orders, newest first. Null, with an error, when the
    /// order service fails.
    async fn orders(
        &self,
        #[graphql(default_with = "DEFAULT_ORDERS")] first: i32,
    ) -> Result<Option<Vec<Order>>> {
        let first = list_size(first, MAX_LIST)? as usize;
        let orders = fetched(&self.orders)?;
        Ok(Some(
            orders
                .into_iter()
                .take(first)
                .map(|order| Order::new(order, self.products.clone()))
                .collect(),
        ))
    }

    /// Products picked for the viewer. Null, with an error, when the
    /// recommendation service (or, for their products, the product service) fails.
    async fn recommendations(
        &self,
        #[graphql(default_with = "DEFAULT_RECOMMENDATIONS")] first: i32,
    ) -> Result<Option<Vec<Recommendation>>> {
        let first = list_size(first, MAX_LIST)? as usize;
        let recommendations = fetched(&self.recommendations)?;
        let products = match &self.products {
            Some(products) => Some(products.clone()?),
            None => None,
        };
        Ok(Some(
            recommended(&recommendations, products.as_ref())
                .take(first)
                .collect(),
        ))
    }

    /// Spending and habits. Null, with an error, when the user service fails.
    async fn analytics(&self) -> Result<Option<UserAnalytics>> {
        fetched(&self.analytics).map(|analytics| Some(UserAnalytics(analytics)))
    }
}

/// A product recommended to the viewer.
pub(crate) struct Recommendation {
    recommendation: Arc<models::Recommendation>,
    /// Fetched when the client selected `product`.
    product: Option<Arc<models::Product>>,
}

#[Object]
impl Recommendation {
    async fn product(&self) -> Result<Tracked<Product>> {
        self.product
            .clone()
            .map(Product::tracked)
            .ok_or_else(|| async_graphql::Error::new("recommended product was not prefetched"))
    }

    /// Relevance, higher is better.
    async fn score(&self) -> f64 {
        self.recommendation.score
    }

    /// Why it was recommended, when the service says.
    async fn reason(&self) -> Option<&str> {
        self.recommendation.reason.as_deref()
    }
}

/// The viewer's spending and habits.
pub(crate) struct UserAnalytics(Arc<models::UserAnalytics>);

impl UserAnalytics {
    fn total_spent_money(&self) -> Money {
        Money::new(self.0.total_spent_cents, &self.0.currency)
    }
}

#[Object]
impl UserAnalytics {
    async fn total_spent(&self) -> Money {
        self.total_spent_money()
    }

    async fn orders_this_month(&self) -> i64 {
        self.0.orders_this_month
    }

    /// Category ids, most bought first.
    async fn favorite_categories(&self) -> Vec<&str> {
        self.0
            .favorite_categories
            .iter()
            .map(|category| category.as_str())
            .collect()
    }
}
