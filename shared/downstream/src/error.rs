//! The one error type of every downstream call.

use crate::Service;

/// Why a downstream call failed. Messages name the service only: never a URL,
/// token or response body, so they are safe to log and to map for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownstreamError {
    /// The service does not know the requested entity (404).
    #[error("{service} service: not found")]
    NotFound { service: Service },
    /// The service refused the request as invalid (a 4xx other than 404).
    #[error("{service} service rejected the request (status {status})")]
    Rejected { service: Service, status: u16 },
    /// The service could not be reached or answered 5xx.
    #[error("{service} service unavailable{}", status.map(|s| format!(" (status {s})")).unwrap_or_default())]
    Unavailable {
        service: Service,
        status: Option<u16>,
    },
    /// The service failed so often lately that its circuit breaker is open:
    /// it was not called.
    #[error("{service} service unavailable (circuit open)")]
    CircuitOpen { service: Service },
    /// The service did not answer before the deadline.
    #[error("{service} service timed out")]
    Timeout { service: Service },
    /// The service answered with a body that breaks the contract.
    #[error("{service} service sent a response that breaks the contract")]
    BadResponse { service: Service },
    /// An id that no entity can have (see [`crate::is_valid_id`]): refused
    /// without a call, so it never counts against the service.
    #[error("{service} service: not a valid id")]
    InvalidId { service: Service },
    /// The request could not even be built (a value that cannot go in its
    /// URI or a header): nothing was sent, nothing counts against the
    /// service.
    #[error("{service} service: the request cannot be sent")]
    Unsendable { service: Service },
}

impl DownstreamError {
    pub fn service(&self) -> Service {
        match self {
            DownstreamError::NotFound { service }
            | DownstreamError::Rejected { service, .. }
            | DownstreamError::Unavailable { service, .. }
            | DownstreamError::CircuitOpen { service }
            | DownstreamError::Timeout { service }
            | DownstreamError::BadResponse { service }
            | DownstreamError::InvalidId { service }
            | DownstreamError::Unsendable { service } => *service,
        }
    }
}
