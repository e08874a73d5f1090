//! C handles and the Rust values behind them, in one place (after
//! rustls-ffi's `Castable`): each opaque handle type names the Rust type it
//! stands for and how that value is owned, and these helpers are the only
//! casts between the two. Call sites never write `as` on a handle.
//!
//! - `MoonshotInstance` is a `Box<Instance>`: made by `create`
//!   (`to_box_ptr`), freed once by `destroy` (`free_box`).
//! - `MoonshotRequest` is an `Arc<RequestState>` (the job holds another
//!   reference): made by `complete` (`to_arc_ptr`), freed once by `release`
//!   (`free_arc`).

use std::sync::Arc;

use moonshot_abi::{MoonshotInstance, MoonshotRequest};

use crate::instance::{Instance, RequestState};

/// The handle's value lives in a `Box`.
pub(crate) struct OwnedByBox;
/// The handle's value lives in an `Arc`; the handle is one strong reference.
pub(crate) struct OwnedByArc;

/// Ties an opaque C handle type to the Rust type behind it.
pub(crate) trait Castable {
    /// `OwnedByBox` or `OwnedByArc`.
    type Ownership;
    /// What a handle points at.
    type Rust;
}

impl Castable for MoonshotInstance {
    type Ownership = OwnedByBox;
    type Rust = Instance;
}

impl Castable for MoonshotRequest {
    type Ownership = OwnedByArc;
    type Rust = RequestState;
}

/// Gives `value` to C as a handle, freed by `free_box`.
pub(crate) fn to_box_ptr<C>(value: C::Rust) -> *mut C
where
    C: Castable<Ownership = OwnedByBox>,
{
    Box::into_raw(Box::new(value)).cast()
}

/// Gives one reference of `value` to C as a handle, freed by `free_arc`.
pub(crate) fn to_arc_ptr<C>(value: Arc<C::Rust>) -> *mut C
where
    C: Castable<Ownership = OwnedByArc>,
{
    Arc::into_raw(value).cast_mut().cast()
}

/// Borrows the value behind a handle; None for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle of its kind (made by `to_box_ptr` or
/// `to_arc_ptr` and not yet freed) that stays live for `'a`.
pub(crate) unsafe fn to_ref<'a, C: Castable>(ptr: *const C) -> Option<&'a C::Rust> {
    // SAFETY: by the contract above, a non-NULL `ptr` points at a live
    // `C::Rust` (the handle is that value's address, cast).
    unsafe { ptr.cast::<C::Rust>().as_ref() }
}

/// Frees a boxed handle; NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or a handle from `to_box_ptr` not freed before; no borrow
/// of it outlives this call.
pub(crate) unsafe fn free_box<C>(ptr: *mut C)
where
    C: Castable<Ownership = OwnedByBox>,
{
    if !ptr.is_null() {
        // SAFETY: by the contract above, `ptr` came from `Box::into_raw` of
        // a `Box<C::Rust>` and is freed only here, once.
        drop(unsafe { Box::from_raw(ptr.cast::<C::Rust>()) });
    }
}

/// Takes back the reference a handle holds; None for NULL.
///
/// # Safety
/// `ptr` is NULL or a handle from `to_arc_ptr` not taken back before; the
/// handle must not be used afterwards.
pub(crate) unsafe fn take_arc<C>(ptr: *const C) -> Option<Arc<C::Rust>>
where
    C: Castable<Ownership = OwnedByArc>,
{
    if ptr.is_null() {
        return None;
    }
    // SAFETY: by the contract above, `ptr` came from `Arc::into_raw` of an
    // `Arc<C::Rust>` and its reference is taken back only here, once.
    Some(unsafe { Arc::from_raw(ptr.cast::<C::Rust>()) })
}
