//! `with_*` setters for configuration structs.
//!
//! The configuration types (`FlowLimits`, `Policies`, `HarnessOptions`,
//! the chat server's `ChatConfig`) are `#[non_exhaustive]`: built from
//! `Default` and changed field by field with `with_*` setters, so a new
//! field is not a breaking change. [`with_setters!`](crate::with_setters)
//! writes those setters, one line a field.

/// Writes `with_*` setters for the named fields of a struct:
/// `with_setters!(Type { with_x => x: T, … })` gives
/// `pub fn with_x(mut self, value: T) -> Self`, documented as "Sets
/// [`Type::x`]." plus any `#[doc]` lines written before the setter.
#[doc(hidden)]
#[macro_export]
macro_rules! with_setters {
    ($ty:ident { $( $(#[$extra:meta])* $setter:ident => $field:ident : $t:ty ),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets [`", stringify!($ty), "::", stringify!($field), "`].")]
                $(#[$extra])*
                pub fn $setter(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}
