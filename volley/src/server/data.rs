//! Typed data a game attaches to a player (its team, its character, its
//! match), one value per type, as `http::Extensions` does for a request.

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use crate::locks::lock;

type Value = Arc<dyn Any + Send + Sync>;

/// One value per type; dropped when the player leaves.
#[derive(Default)]
pub(super) struct PlayerData(Mutex<FxHashMap<TypeId, Value>>);

impl PlayerData {
    pub(super) fn set<T: Send + Sync + 'static>(&self, value: T) -> Option<Arc<T>> {
        let old = lock(&self.0).insert(TypeId::of::<T>(), Arc::new(value));
        old.and_then(downcast)
    }

    pub(super) fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        lock(&self.0).get(&TypeId::of::<T>()).cloned().and_then(downcast)
    }

    pub(super) fn get_or_insert_with<T: Send + Sync + 'static>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        if let Some(value) = self.get() {
            return value;
        }
        // Made outside the lock (`make` may look at the player's data too);
        // if another thread got there first, its value wins.
        let made: Value = Arc::new(make());
        let value = lock(&self.0).entry(TypeId::of::<T>()).or_insert(made).clone();
        downcast(value).expect("stored under its own type id")
    }

    pub(super) fn remove<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        lock(&self.0).remove(&TypeId::of::<T>()).and_then(downcast)
    }

    /// Drops every value (the player left). Dropped outside the lock: a
    /// value's `Drop` may itself look at the player.
    pub(super) fn clear(&self) {
        let values = std::mem::take(&mut *lock(&self.0));
        drop(values);
    }
}

fn downcast<T: Send + Sync + 'static>(value: Value) -> Option<Arc<T>> {
    value.downcast::<T>().ok()
}
