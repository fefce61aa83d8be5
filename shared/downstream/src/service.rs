use std::fmt;

/// The five downstream services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    User,
    Product,
    Order,
    Recommendation,
    Device,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::User,
        Service::Product,
        Service::Order,
        Service::Recommendation,
        Service::Device,
    ];

    /// Lower-case name used in logs, metrics and config keys.
    pub fn name(self) -> &'static str {
        match self {
            Service::User => "user",
            Service::Product => "product",
            Service::Order => "order",
            Service::Recommendation => "recommendation",
            Service::Device => "device",
        }
    }

    /// Where devstack serves it.
    pub fn default_port(self) -> u16 {
        match self {
            Service::User => 7101,
            Service::Product => 7102,
            Service::Order => 7103,
            Service::Recommendation => 7104,
            Service::Device => 7105,
        }
    }

    /// The environment variable holding its base URL.
    pub fn url_env_var(self) -> &'static str {
        match self {
            Service::User => "BFF_USER_SERVICE_URL",
            Service::Product => "BFF_PRODUCT_SERVICE_URL",
            Service::Order => "BFF_ORDER_SERVICE_URL",
            Service::Recommendation => "BFF_RECOMMENDATION_SERVICE_URL",
            Service::Device => "BFF_DEVICE_SERVICE_URL",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
