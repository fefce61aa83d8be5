//! Serde models of the downstream contract (DESIGN.md, "Downstream contract").
//!
//! Field names are the wire names (snake_case). Unknown fields are tolerated so a
//! service can grow; a missing required field fails decoding, which the client
//! reports as a bad response. devstack serves these same types, so the reference
//! services cannot drift from what the clients decode.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Integer minor units of `currency` (e.g. cents).
pub type Cents = i64;

// ---------------------------------------------------------------- users

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub avatar: Avatar,
    pub membership_level: String,
    pub loyalty_points: i64,
    pub unread_notifications_count: i64,
    pub can_checkout: bool,
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Avatar {
    pub thumbnail_url: String,
    pub high_res_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub id: String,
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAnalytics {
    pub total_spent_cents: Cents,
    pub currency: String,
    pub orders_this_month: i64,
    pub favorite_categories: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wishlist {
    pub product_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    pub label: String,
    pub is_default: bool,
}

// ------------------------------------------------------------- products

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub description: String,
    pub price_cents: Cents,
    pub original_price_cents: Cents,
    pub discount_percentage: i64,
    pub currency: String,
    pub average_rating: f64,
    pub review_count: i64,
    pub category_id: String,
    pub thumbnail_url: String,
    pub image_gallery: Vec<String>,
    /// Ordered by name so output is deterministic.
    pub specifications: BTreeMap<String, String>,
    pub inventory_status: InventoryStatus,
    pub shipping_options: Vec<ShippingOption>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryStatus {
    InStock,
    LowStock,
    OutOfStock,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingOption {
    pub id: String,
    pub label: String,
    pub price_cents: Cents,
    pub estimated_days: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub total: i64,
    pub page: i64,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    pub author_name: String,
    pub rating: i64,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelatedProducts {
    pub product_ids: Vec<String>,
}

// --------------------------------------------------------------- orders

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub total_cents: Cents,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub items: Vec<OrderItem>,
    pub tracking_number: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: String,
    pub quantity: i64,
    pub unit_price_cents: Cents,
}

/// One line of a cart, as the order service takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartItem {
    pub product_id: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuoteRequest {
    pub user_id: String,
    pub items: Vec<CartItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub subtotal_cents: Cents,
    pub discount_cents: Cents,
    pub shipping_cents: Cents,
    pub tax_cents: Cents,
    pub total_cents: Cents,
    pub currency: String,
    pub shipping_options: Vec<ShippingOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceOrderRequest {
    pub user_id: String,
    pub items: Vec<CartItem>,
    pub address_id: String,
    pub shipping_option_id: String,
    pub payment_method_id: String,
}

// ------------------------------------------------------- recommendations

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub product_id: String,
    pub score: f64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarProduct {
    pub product_id: String,
    pub score: f64,
}

// -------------------------------------------------------------- devices

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub owner_id: String,
    pub status: DeviceStatus,
    pub temperature: Option<f64>,
    pub battery_level: Option<i64>,
    pub last_update: DateTime<Utc>,
    pub settings: DeviceSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Online,
    Offline,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSettings {
    pub target_temperature: f64,
    pub mode: DeviceMode,
    pub schedule: Option<String>,
    pub auto_mode_enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceMode {
    Off,
    Heat,
    Cool,
    Auto,
    Eco,
}

/// `PATCH /devices/{id}/settings`: any subset of the settings. Absent fields are
/// not sent; `schedule: Some(None)` clears the schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceSettingsPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DeviceMode>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_some"
    )]
    pub schedule: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_mode_enabled: Option<bool>,
}

impl DeviceSettingsPatch {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Distinguishes an explicit `null` (Some(None)) from an absent field (None).
fn deserialize_some<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The contract's error body: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
