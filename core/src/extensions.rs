//! [`Extensions`]: typed values a layer above the core keeps with one
//! actor, in its [`Context`](crate::Context).
//!
//! The core does not know these types: an event-sourced actor keeps its
//! sequence number and recovery status here, so that its handlers can read
//! them through their context. One value per type; empty (and unallocated)
//! until the first insert.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;

/// Typed values kept with one actor, one per type.
#[derive(Default)]
pub struct Extensions {
    map: Option<HashMap<TypeId, Box<dyn Any + Send>>>,
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Extensions({})",
            self.map.as_ref().map_or(0, |m| m.len())
        )
    }
}

impl Extensions {
    /// Keeps `value`, returning the value of that type it replaces.
    pub fn insert<T: Send + 'static>(&mut self, value: T) -> Option<T> {
        self.map
            .get_or_insert_with(HashMap::new)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|old| *old))
    }

    /// The value of type `T`, if one is kept.
    pub fn get<T: Send + 'static>(&self) -> Option<&T> {
        self.map
            .as_ref()?
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref())
    }

    /// The value of type `T`, mutably, if one is kept.
    pub fn get_mut<T: Send + 'static>(&mut self) -> Option<&mut T> {
        self.map
            .as_mut()?
            .get_mut(&TypeId::of::<T>())
            .and_then(|v| v.downcast_mut())
    }

    /// Takes the value of type `T` out, if one is kept.
    pub fn remove<T: Send + 'static>(&mut self) -> Option<T> {
        self.map
            .as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|v| v.downcast::<T>().ok().map(|v| *v))
    }
}

#[cfg(test)]
mod tests {
    use super::Extensions;

    #[test]
    fn one_value_per_type() {
        let mut ext = Extensions::default();
        assert_eq!(ext.get::<u32>(), None);
        assert_eq!(ext.insert(1u32), None);
        assert_eq!(ext.insert(2u32), Some(1));
        ext.insert("text");
        *ext.get_mut::<u32>().expect("kept") += 1;
        assert_eq!(ext.get::<u32>(), Some(&3));
        assert_eq!(ext.get::<&str>(), Some(&"text"));
        assert_eq!(ext.remove::<u32>(), Some(3));
        assert_eq!(ext.get::<u32>(), None);
    }
}
