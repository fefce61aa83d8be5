//! Products as the app shows them: cards in a list, and a trimmed view.

use std::sync::Arc;

use async_graphql::{Enum, ID, Object};
use downstream::models::{self, InventoryStatus};

/// Cards on one page of the product list.
pub(crate) const PAGE_SIZE: u32 = 20;
/// Longest card name, in characters, before "..." is added.
pub(crate) const CARD_NAME_CHARS: usize = 30;
/// Longest product summary, in characters, "..." included.
pub(crate) const SUMMARY_CHARS: usize = 200;

pub(crate) struct ProductPage {
    items: Vec<ProductCard>,
    page: i32,
    has_next_page: bool,
}

impl ProductPage {
    /// Page `page` (1-based) of a category, as the product service returned it.
    pub(crate) fn new(page: i32, found: models::ProductPage) -> Self {
        let shown = u64::try_from(page).unwrap_or(0) * u64::from(PAGE_SIZE);
        let total = u64::try_from(found.total).unwrap_or(0);
        Self {
            items: found
                .items
                .into_iter()
                .take(PAGE_SIZE as usize)
                .map(ProductCard)
                .collect(),
            page,
            has_next_page: shown < total,
        }
    }

    /// A page whose items and `hasNextPage` were not selected.
    pub(crate) fn empty(page: i32) -> Self {
        Self {
            items: Vec::new(),
            page,
            has_next_page: false,
        }
    }
}

#[Object]
impl ProductPage {
    async fn items(&self) -> &[ProductCard] {
        &self.items
    }

    async fn page(&self) -> i32 {
        self.page
    }

    async fn has_next_page(&self) -> bool {
        self.has_next_page
    }
}

/// A product in a list.
pub(crate) struct ProductCard(models::Product);

#[Object]
impl ProductCard {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// At most 30 characters, then "...".
    async fn name(&self) -> String {
        shaping::truncate_chars(&self.0.name, CARD_NAME_CHARS)
    }

    /// Formatted, e.g. "$19.99".
    async fn price(&self) -> String {
        price(&self.0)
    }

    /// Thumbnail.
    async fn image_url(&self) -> &str {
        &self.0.thumbnail_url
    }

    /// Rounded to one decimal.
    async fn rating(&self) -> f64 {
        shaping::round_one_decimal(self.0.average_rating)
    }

    async fn has_discount(&self) -> bool {
        has_discount(&self.0)
    }
}

/// A product's page in the app, trimmed.
pub(crate) struct ProductView(pub(crate) Arc<models::Product>);

impl bff_server::graphql::Entity for ProductView {
    const KIND: &'static str = "product";

    fn entity_id(&self) -> &str {
        &self.0.id
    }
}

#[Object]
impl ProductView {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Full name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn price(&self) -> String {
        price(&self.0)
    }

    async fn image_url(&self) -> &str {
        &self.0.thumbnail_url
    }

    async fn rating(&self) -> f64 {
        shaping::round_one_decimal(self.0.average_rating)
    }

    async fn review_count(&self) -> i64 {
        self.0.review_count
    }

    async fn has_discount(&self) -> bool {
        has_discount(&self.0)
    }

    async fn availability(&self) -> Availability {
        self.0.inventory_status.into()
    }

    /// At most 200 characters.
    async fn summary(&self) -> String {
        summary(&self.0.description)
    }
}

fn price(product: &models::Product) -> String {
    shaping::format_money(product.price_cents, &product.currency)
}

fn has_discount(product: &models::Product) -> bool {
    product.original_price_cents > product.price_cents
}

/// The description when it fits in 200 characters; otherwise its first
/// characters (trailing spaces dropped) and "...", 200 in all.
fn summary(description: &str) -> String {
    if description.chars().nth(SUMMARY_CHARS).is_none() {
        return description.to_owned();
    }
    let kept: String = description.chars().take(SUMMARY_CHARS - 3).collect();
    format!("{}...", kept.trim_end())
}

// The names are the contract's.
#[allow(clippy::enum_variant_names)]
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub(crate) enum Availability {
    InStock,
    LowStock,
    OutOfStock,
}

impl From<InventoryStatus> for Availability {
    fn from(status: InventoryStatus) -> Self {
        match status {
            InventoryStatus::InStock => Availability::InStock,
            InventoryStatus::LowStock => Availability::LowStock,
            InventoryStatus::OutOfStock => Availability::OutOfStock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_at_most_200_characters() {
        assert_eq!(summary("short"), "short");
        let exactly = "é".repeat(200);
        assert_eq!(summary(&exactly), exactly);
        let long = "ü".repeat(201);
        let cut = summary(&long);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with("..."));
        assert!(cut.starts_with(&"ü".repeat(197)));
        let spaced = format!("{} {}", "a".repeat(196), "b".repeat(50));
        assert_eq!(summary(&spaced), format!("{}...", "a".repeat(196)));
    }
}
