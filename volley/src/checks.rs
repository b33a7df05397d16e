//! Validation of decoded payloads. A value must pass the check declared with
//! its remote (a plain `fn`, so that declarations stay `const` and both sides
//! share them) and then any check the [`Protocol`](crate::Protocol) was built
//! with (a closure, which can capture configuration: a name length from a
//! settings file, a map's bounds).
//!
//! A check is for input no honest peer sends: a failing request reaches the
//! caller only as `BadRequest`, and the reason goes to the receiver's logs and
//! bad-input hooks. A game rule the player should be told about ("not enough
//! gold") belongs in the handler, as a [`Reject`](crate::Reject) with a
//! message the caller sees.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A check declared with a remote: `Err` holds the reason, which is logged and
/// given to the bad-input hooks but never sent to the peer.
///
/// A plain `fn`, so that declarations can be `const`. A closure that captures
/// nothing coerces to one, which also lets a `String` payload be checked by a
/// function taking `&str`:
///
/// ```
/// use volley::ServerEvent;
///
/// fn short(text: &str) -> Result<(), String> {
///     if text.len() <= 200 { Ok(()) } else { Err(format!("{} bytes", text.len())) }
/// }
/// const CHAT: ServerEvent<String> = ServerEvent::new("Chat").with_check(|text| short(text));
/// ```
///
/// A check that needs configuration is given to the protocol instead:
/// [`ProtocolBuilder::check_request`](crate::ProtocolBuilder::check_request).
pub type Check<T> = fn(&T) -> Result<(), String>;

/// A check given to the protocol, with its value's type erased so that one
/// table holds every remote's.
pub(crate) type ErasedCheck = Arc<dyn Fn(&dyn Any) -> Result<(), String> + Send + Sync>;

/// Erases `check`'s value type; it runs only on a `T`.
pub(crate) fn erase<T: 'static>(check: impl Fn(&T) -> Result<(), String> + Send + Sync + 'static) -> ErasedCheck {
    Arc::new(move |value: &dyn Any| match value.downcast_ref::<T>() {
        Some(value) => check(value),
        // A handler registered with another declaration of the same name and
        // other types: refused rather than let through unchecked.
        None => Err(format!("check written for {}", std::any::type_name::<T>())),
    })
}

/// Both checks in a row: `first`, then `then`.
pub(crate) fn both(first: ErasedCheck, then: ErasedCheck) -> ErasedCheck {
    Arc::new(move |value: &dyn Any| first(value).and_then(|()| then(value)))
}

/// Every check a decoded `T` must pass.
pub(crate) struct Checks<T> {
    declared: Option<Check<T>>,
    protocol: Option<ErasedCheck>,
}

impl<T: 'static> Checks<T> {
    pub(crate) fn new(declared: Option<Check<T>>, protocol: Option<ErasedCheck>) -> Self {
        Self { declared, protocol }
    }

    /// No check at all.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self::new(None, None)
    }

    /// Runs them in order; the first failure's reason.
    pub(crate) fn run(&self, value: &T) -> Result<(), String> {
        if let Some(check) = self.declared {
            check(value)?;
        }
        match &self.protocol {
            Some(check) => check(value),
            None => Ok(()),
        }
    }
}

// Manual impls: a derive would require `T: Clone`.
impl<T> Clone for Checks<T> {
    fn clone(&self) -> Self {
        Self {
            declared: self.declared,
            protocol: self.protocol.clone(),
        }
    }
}

impl<T> fmt::Debug for Checks<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checks")
            .field("declared", &self.declared.is_some())
            .field("protocol", &self.protocol.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn even(n: &u32) -> Result<(), String> {
        if n % 2 == 0 {
            Ok(())
        } else {
            Err("odd".into())
        }
    }

    #[test]
    fn the_declared_check_runs_first_then_the_protocols() {
        let limit = 10;
        let small = erase(move |n: &u32| if *n <= limit { Ok(()) } else { Err("big".into()) });
        let checks = Checks::new(Some(even as Check<u32>), Some(small));
        assert_eq!(checks.run(&4), Ok(()));
        assert_eq!(checks.run(&3), Err("odd".into()));
        assert_eq!(checks.run(&12), Err("big".into()));
        assert_eq!(checks.run(&13), Err("odd".into()));
        assert_eq!(Checks::<u32>::none().run(&13), Ok(()));
    }

    #[test]
    fn a_check_refuses_a_value_of_another_type() {
        let check = erase(|_: &u32| Ok(()));
        assert!(check(&5u64).is_err());
        let two = both(erase(|_: &u32| Ok(())), erase(|_: &u32| Err("second".into())));
        assert_eq!(two(&5u32), Err("second".into()));
    }
}
