//! Everything the simulator remembers, behind one mutex.
//!
//! The lock is only ever held for short, synchronous sections (never across an `.await`), so a
//! plain `std::sync::Mutex` is the right tool. A poisoned lock is recovered rather than
//! propagated: the data is simple enough that a panic elsewhere cannot leave it inconsistent in
//! a way that matters to a test double.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;

use crate::clock;
use crate::config::Config;
use crate::dialect::Switches;
use crate::faults::FaultQueues;
use crate::gateways::{Gateway, ProviderConfig};
use crate::ids::IdGen;
use crate::log_faults::LogFaults;
use crate::logs::{ListMemo, LogRow};
use crate::models::ModelRules;

/// One request received on an inference route, as `GET /__sim/requests` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// 1-based position since the last reset.
    pub seq: u64,
    pub method: String,
    pub path: String,
    /// Raw query string ("" when none).
    pub query: String,
    /// Provider the request was for, once known (absent for requests refused before that).
    pub provider: Option<String>,
    pub model: Option<String>,
    /// Lower-case header names; repeated headers joined with ", ". Values are recorded as sent
    /// (tests assert on forwarded provider keys), so do not point real credentials at this.
    pub headers: BTreeMap<String, String>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    /// Status returned; null while the answer is pending (e.g. a stall).
    pub status: Option<u16>,
    /// Kind of the scripted fault this request consumed.
    pub fault: Option<&'static str>,
    pub log_id: Option<String>,
}

/// A stored cacheable answer.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub body: Bytes,
    pub content_type: &'static str,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub expires: Instant,
}

#[derive(Debug, Default)]
pub struct Inner {
    pub faults: FaultQueues,
    pub records: Vec<RequestRecord>,
    /// Bumped by every reset, so a request that began before a reset cannot update a record
    /// that now belongs to another request.
    pub epoch: u64,
    pub cache: HashMap<Vec<u8>, CacheEntry>,
    pub logs: Vec<LogRow>,
    /// Scripted Logs API faults and the record of list requests.
    pub log_faults: LogFaults,
    /// Bumped whenever `logs` changes (invalidates `list_memo`).
    pub logs_version: u64,
    pub list_memo: Option<ListMemo>,
    pub gateways: BTreeMap<String, Gateway>,
    pub provider_configs: Vec<ProviderConfig>,
    /// Which provider dialects are on (`/__sim/dialects`).
    pub dialects: Switches,
    /// Retired and redirected models (`/__sim/models`).
    pub models: ModelRules,
}

/// Where a request's record lives: valid only in the epoch it was made in.
#[derive(Debug, Clone, Copy)]
pub struct RecordHandle {
    epoch: u64,
    index: usize,
}

pub struct State {
    pub config: Config,
    pub ids: IdGen,
    /// Keys the thought signatures this process issues (see `dialect::signature`).
    pub signature_secret: u64,
    inner: Mutex<Inner>,
    in_flight: AtomicUsize,
}

impl State {
    pub fn new(config: Config) -> Self {
        let now = clock::now_ms();
        let mut inner = Inner::default();
        let gateway = Gateway::initial(&config, now);
        inner.gateways.insert(gateway.id.clone(), gateway);
        let seed = (now as u64) ^ (u64::from(std::process::id()) << 32);
        Self {
            // Seeded from the clock and pid only so ids differ between runs; nothing depends
            // on their randomness.
            ids: IdGen::new(seed),
            // Another process must not accept this one's signatures: derived from the same seed.
            signature_secret: crate::ids::SplitMix64::new(!seed).next_u64(),
            config,
            inner: Mutex::new(inner),
            in_flight: AtomicUsize::new(0),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a record (its `seq` is assigned here) and returns where it lives.
    pub fn begin_record(&self, mut record: RequestRecord) -> RecordHandle {
        let mut inner = self.lock();
        record.seq = inner.records.len() as u64 + 1;
        inner.records.push(record);
        RecordHandle { epoch: inner.epoch, index: inner.records.len() - 1 }
    }

    /// Updates a record, unless a reset has discarded it since.
    pub fn update_record(&self, handle: RecordHandle, f: impl FnOnce(&mut RequestRecord)) {
        let mut inner = self.lock();
        if inner.epoch == handle.epoch {
            if let Some(record) = inner.records.get_mut(handle.index) {
                f(record);
            }
        }
    }

    /// Clears faults, request records, cache and log rows, and restores the default dialects and
    /// model rules (gateways and stored keys stay).
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.faults.clear();
        inner.records.clear();
        inner.cache.clear();
        inner.logs.clear();
        inner.log_faults.clear();
        inner.dialects = Switches::default();
        inner.models = ModelRules::default();
        inner.logs_version += 1;
        inner.list_memo = None;
        inner.epoch += 1;
    }

    /// Counts an inference request as in flight until the guard is dropped — including when
    /// hyper drops the handler because the client disconnected.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(&self.in_flight)
    }

    pub fn in_flight_count(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
