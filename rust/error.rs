//! The one error type of the core. Each variant names the input at fault (an index, a field),
//! so Python can raise a message that says where the problem is. `py/errors.rs` maps the
//! variants onto the small exception hierarchy of `empg.exceptions`.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// A reward that is NaN or infinite: weights computed from it would silently be NaN.
    #[error("reward at index {index} is not finite ({value}); rewards must be finite numbers")]
    NonFiniteReward { index: usize, value: f32 },

    /// Two inputs that must have one entry per item have different lengths.
    #[error("{what} has {got} entries but {expected} were expected")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },

    /// An argument out of its domain (a zero group size, a negative length, an unknown name).
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },

    /// A sequence that cannot fit in any micro-batch under the token budget.
    #[error(
        "sequence {index} has {length} tokens, more than the micro-batch token budget of {budget}"
    )]
    SequenceTooLong {
        index: usize,
        length: u64,
        budget: u64,
    },
}

impl CoreError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
