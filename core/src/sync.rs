//! Poison-free locking for the std locks courier's crates share between
//! threads: [`lock`], [`read`], [`write`](write()) and [`get_mut`].
//!
//! A std lock is poisoned when a thread panics while holding it. courier
//! ignores poisoning, on purpose, for these reasons:
//!
//! - a panic in an actor's handler is caught and handed to its supervisor
//!   (see [`SupervisorStrategy`](crate::SupervisorStrategy)); it must not
//!   turn every later lock of a shared structure (the system's registry, the
//!   event stream, a store's engine slot) into a second panic far away from
//!   the first;
//! - no critical section behind these locks runs user code: handlers,
//!   resolvers and actor factories are called after the guard is dropped
//!   (a resolver is cloned out of its map first), so a user's panic cannot
//!   interrupt one;
//! - every critical section leaves the data valid after each of its steps:
//!   it inserts, removes or replaces whole entries (registry, resolvers,
//!   event-stream channels, top-level actors, a memory engine's map), sets a
//!   value once (a store's poison reason, its engine slot), raises a number
//!   only after the write it stands for succeeded (the commit record), or
//!   updates bookkeeping whose worst case after an interrupted step is a
//!   wasted slot or a miscounted log line (the ask deadline table, the
//!   dead-letter log window). A panic between two such steps, which only an
//!   allocation failure or a panicking `tracing` subscriber could cause,
//!   leaves a value that is still usable, never a half-written one.
//!
//! Code that keeps an invariant across several fields behind one lock must
//! not use these helpers unless each step keeps that invariant; say why at
//! the call site.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, ignoring poisoning (see the [module docs](self) for why
/// that is sound for courier's locks).
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// use courier_core::sync;
///
/// let seen = Mutex::new(Vec::new());
/// sync::lock(&seen).push(1);
/// assert_eq!(*sync::lock(&seen), [1]);
/// ```
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks `lock` for reading, ignoring poisoning (see the
/// [module docs](self)).
pub fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Locks `lock` for writing, ignoring poisoning (see the
/// [module docs](self)).
pub fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The value inside `lock`, through exclusive access, ignoring poisoning
/// (see the [module docs](self)). For `Drop` impls, which own the lock.
pub fn get_mut<T: ?Sized>(lock: &mut RwLock<T>) -> &mut T {
    lock.get_mut().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, RwLock};

    use super::*;

    /// Poisons `mutex` by panicking in a thread that holds it.
    fn poison<T: Send + Sync + 'static>(shared: Arc<T>, hold: impl Fn(&T) + Send + 'static) {
        let handle = std::thread::spawn(move || {
            hold(&shared);
        });
        assert!(handle.join().is_err(), "the holder must have panicked");
    }

    #[test]
    fn lock_ignores_poison() {
        let mutex = Arc::new(Mutex::new(1));
        poison(Arc::clone(&mutex), |m| {
            let mut guard = m.lock().unwrap_or_else(PoisonError::into_inner);
            *guard = 2;
            panic!("poison the lock");
        });
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 2);
    }

    #[test]
    fn read_write_and_get_mut_ignore_poison() {
        let rw = Arc::new(RwLock::new(1));
        poison(Arc::clone(&rw), |l| {
            let mut guard = l.write().unwrap_or_else(PoisonError::into_inner);
            *guard = 2;
            panic!("poison the lock");
        });
        assert!(rw.is_poisoned());
        assert_eq!(*read(&rw), 2);
        *write(&rw) = 3;
        let mut rw = Arc::into_inner(rw).expect("the only handle");
        assert_eq!(*get_mut(&mut rw), 3);
    }
}
