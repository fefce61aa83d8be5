use std::borrow::Cow;

use async_graphql::Object;

/// An amount of money in minor units of its currency.
pub(crate) struct Money {
    amount_cents: i64,
    currency: Cow<'static, str>,
}

/// Currencies whose code need not be copied into each amount (a dashboard
/// shows dozens of amounts).
const KNOWN_CURRENCIES: [&str; 5] = ["USD", "EUR", "GBP", "JPY", "KRW"];

impl Money {
    pub(crate) fn new(amount_cents: i64, currency: &str) -> Self {
        let known = KNOWN_CURRENCIES.iter().find(|code| **code == currency);
        Self {
            amount_cents,
            currency: known.map_or_else(
                || Cow::Owned(currency.to_owned()),
                |code| Cow::Borrowed(*code),
            ),
        }
    }
}

#[Object]
impl Money {
    /// Integer minor units (cents for USD).
    async fn amount_cents(&self) -> i64 {
        self.amount_cents
    }

    /// ISO 4217 code, e.g. "USD".
    async fn currency(&self) -> &str {
        &self.currency
    }

    /// e.g. "$1,234.50"
    async fn formatted(&self) -> String {
        self.formatted_amount()
    }
}

impl Money {
    fn formatted_amount(&self) -> String {
        shaping::format_money(self.amount_cents, &self.currency)
    }
}
