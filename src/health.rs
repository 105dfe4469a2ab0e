//! Readiness, shared by the parts that can degrade service (reloads, later the store) and
//! reported by the control listener's `/readyz`.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use http::StatusCode;

/// Readiness, as reported by `/readyz`.
#[derive(Default)]
pub struct Health {
    draining: AtomicBool,
    /// Named conditions that degrade service without stopping it (e.g. a rejected rule
    /// reload that left the previous rules in force), shown in `/readyz` detail.
    notes: RwLock<BTreeMap<&'static str, String>>,
}

impl Health {
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn set_note(&self, name: &'static str, note: Option<String>) {
        if let Ok(mut notes) = self.notes.write() {
            match note {
                Some(note) => notes.insert(name, note),
                None => notes.remove(name),
            };
        }
    }

    pub fn report(&self) -> (StatusCode, String) {
        let draining = self.is_draining();
        let notes = self.notes.read().map(|n| n.clone()).unwrap_or_default();
        let body = serde_json::json!({
            "ready": !draining,
            "draining": draining,
            "notes": notes,
        });
        let status = if draining {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        (status, format!("{body}\n"))
    }
}
