//! Shared values, numbered and counted.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;

/// The number of a value in a [`Numbered`]. 4 bytes, and `Option<Id>` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(NonZeroU32);

/// Distinct values, each held once behind an `Arc` and numbered, so a
/// record that uses one stores its 4-byte [`Id`] instead of an 8-byte
/// pointer (or a 16-byte one, for a slice). Users are counted by hand, with
/// [`Numbered::acquire`] and [`Numbered::release`]: an id is not an `Arc`,
/// so its reference count cannot tell who uses it. A value is dropped, and
/// its number used again, with its last user.
#[derive(Debug)]
pub struct Numbered<T: ?Sized + Eq + Hash> {
    /// Indexed by id - 1: the value and how many users it has.
    slots: Vec<Option<(Arc<T>, usize)>>,
    ids: HashMap<Arc<T>, Id>,
    free: Vec<Id>,
}

impl<T: ?Sized + Eq + Hash> Default for Numbered<T> {
    fn default() -> Self {
        Numbered {
            slots: Vec::new(),
            ids: HashMap::new(),
            free: Vec::new(),
        }
    }
}

impl<T: ?Sized + Eq + Hash> Numbered<T> {
    /// The id of `value`, counting one more user; `make` builds the shared
    /// copy when the value is new.
    pub fn acquire(&mut self, value: &T, make: impl FnOnce() -> Arc<T>) -> Id {
        if let Some(&id) = self.ids.get(value) {
            self.slot(id).1 += 1;
            return id;
        }
        let shared = make();
        debug_assert!(*shared == *value, "make() built another value");
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[index(id)] = Some((shared.clone(), 1));
                id
            }
            None => {
                self.slots.push(Some((shared.clone(), 1)));
                let n = u32::try_from(self.slots.len()).expect("fewer than 2^32 values");
                Id(NonZeroU32::new(n).expect("at least one slot"))
            }
        };
        self.ids.insert(shared, id);
        id
    }

    /// One more user of a value already numbered.
    pub fn add_user(&mut self, id: Id) {
        self.slot(id).1 += 1;
    }

    /// One user less; the value is dropped with its last user.
    pub fn release(&mut self, id: Id) {
        let slot = self.slot(id);
        slot.1 -= 1;
        if slot.1 == 0 {
            let (value, _) = self.slots[index(id)].take().expect("in use");
            self.ids.remove(&value);
            self.free.push(id);
        }
    }

    /// The value of a live id (panics on an id released by all its users:
    /// a bookkeeping error).
    pub fn get(&self, id: Id) -> &Arc<T> {
        &self.slots[index(id)].as_ref().expect("id in use").0
    }

    pub fn id_of(&self, value: &T) -> Option<Id> {
        self.ids.get(value).copied()
    }

    /// Values in use.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Users of a live id.
    pub fn users(&self, id: Id) -> usize {
        self.slots[index(id)].as_ref().map_or(0, |s| s.1)
    }

    fn slot(&mut self, id: Id) -> &mut (Arc<T>, usize) {
        self.slots[index(id)].as_mut().expect("id in use")
    }
}

fn index(id: Id) -> usize {
    id.0.get() as usize - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_numbered_shared_and_dropped_with_their_last_user() {
        let mut n: Numbered<[u32]> = Numbered::default();
        let a = n.acquire(&[1], || Arc::from(&[1][..]));
        let b = n.acquire(&[1, 2], || Arc::from(&[1, 2][..]));
        assert_ne!(a, b);
        assert_eq!(n.acquire(&[1], || unreachable!("already there")), a);
        assert_eq!(n.users(a), 2);
        assert_eq!(n.len(), 2);
        assert_eq!(&n.get(b)[..], &[1, 2]);
        n.release(a);
        assert_eq!(n.id_of(&[1]), Some(a), "one user left");
        n.release(a);
        assert_eq!(n.id_of(&[1]), None);
        assert_eq!(n.len(), 1);
        // The freed number is used again.
        assert_eq!(n.acquire(&[3], || Arc::from(&[3][..])), a);
        assert_eq!(&n.get(a)[..], &[3]);
        n.add_user(b);
        assert_eq!(n.users(b), 2);
        assert_eq!(std::mem::size_of::<Option<Id>>(), 4);
    }
}
