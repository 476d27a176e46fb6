//! The in-memory answer index, updated per object.
//!
//! Each Service (with its slices) and each Pod is an *owner* of a set of
//! records; replacing an owner's records touches only the names it had
//! and has, so an update costs the size of that object, not the cluster.
//! Every proper suffix of a name inside the zone is counted as an empty
//! non-terminal, so `default.svc.cluster.local` is NODATA, not NXDOMAIN.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::{RData, RecordType};

use crate::records::Entry;

/// What the index says about a name.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Records of the asked type (or a CNAME, which answers every type).
    Records(Vec<RData>),
    /// The name exists, not with that type.
    NoData,
    /// No such name in the zone.
    NxDomain,
}

#[derive(Default)]
pub struct Index {
    zone: String,
    names: HashMap<String, Vec<(Arc<str>, RData)>>,
    /// Empty non-terminals inside the zone → how many names sit below.
    below: HashMap<String, usize>,
    owned: HashMap<Arc<str>, Vec<Entry>>,
}

impl Index {
    pub fn new(zone: &str) -> Index {
        Index {
            zone: zone.to_ascii_lowercase(),
            ..Index::default()
        }
    }

    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// Whether `name` (lower case, absolute) is inside the cluster zone.
    pub fn in_zone(&self, name: &str) -> bool {
        name == self.zone || name.ends_with(&format!(".{}", self.zone))
    }

    /// Replaces everything `owner` contributed with `entries`.
    pub fn set(&mut self, owner: &str, entries: Vec<Entry>) {
        let old = self.owned.remove(owner).unwrap_or_default();
        if old == entries {
            if !entries.is_empty() {
                self.owned.insert(Arc::from(owner), entries);
            }
            return;
        }
        let key: Arc<str> = Arc::from(owner);
        for (name, _) in &old {
            let empty = match self.names.get_mut(name) {
                Some(v) => {
                    v.retain(|(o, _)| **o != *owner);
                    v.is_empty()
                }
                None => false,
            };
            if empty {
                self.names.remove(name);
            }
        }
        for name in dedup_names(&old) {
            self.count_parents(name, false);
        }
        for (name, rdata) in &entries {
            self.names
                .entry(name.clone())
                .or_default()
                .push((key.clone(), rdata.clone()));
        }
        for name in dedup_names(&entries) {
            self.count_parents(name, true);
        }
        if !entries.is_empty() {
            self.owned.insert(key, entries);
        }
    }

    fn count_parents(&mut self, name: &str, add: bool) {
        if !self.in_zone(name) {
            return;
        }
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.len() < self.zone.len() {
                break;
            }
            if add {
                *self.below.entry(parent.to_string()).or_default() += 1;
            } else if let Some(n) = self.below.get_mut(parent) {
                *n -= 1;
                if *n == 0 {
                    self.below.remove(parent);
                }
            }
            rest = parent;
        }
    }

    pub fn lookup(&self, name: &str, qtype: RecordType) -> Answer {
        if let Some(recs) = self.names.get(name) {
            let cname: Vec<RData> = recs
                .iter()
                .filter(|(_, r)| matches!(r, RData::CNAME(_)))
                .map(|(_, r)| r.clone())
                .collect();
            if !cname.is_empty() && qtype != RecordType::CNAME {
                return Answer::Records(cname);
            }
            let mut hits: Vec<RData> = recs
                .iter()
                .filter(|(_, r)| qtype == RecordType::ANY || r.record_type() == qtype)
                .map(|(_, r)| r.clone())
                .collect();
            hits.dedup();
            return if hits.is_empty() {
                Answer::NoData
            } else {
                Answer::Records(hits)
            };
        }
        if name == self.zone || self.below.contains_key(name) {
            return Answer::NoData;
        }
        Answer::NxDomain
    }

    /// Whether a reverse name is one the index answers.
    pub fn knows(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    pub fn name_count(&self) -> usize {
        self.names.len()
    }
}

fn dedup_names(entries: &[Entry]) -> Vec<&str> {
    let mut v: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;

    fn a(ip: &str) -> RData {
        RData::A(A(ip.parse().unwrap()))
    }

    #[test]
    fn incremental_updates_and_empty_non_terminals() {
        let mut ix = Index::new("cluster.local.");
        ix.set(
            "svc/default/web",
            vec![("web.default.svc.cluster.local.".into(), a("10.43.0.5"))],
        );
        ix.set(
            "svc/other/web",
            vec![("web.other.svc.cluster.local.".into(), a("10.43.0.6"))],
        );
        assert_eq!(
            ix.lookup("web.default.svc.cluster.local.", RecordType::A),
            Answer::Records(vec![a("10.43.0.5")])
        );
        assert_eq!(
            ix.lookup("web.default.svc.cluster.local.", RecordType::AAAA),
            Answer::NoData
        );
        assert_eq!(
            ix.lookup("default.svc.cluster.local.", RecordType::A),
            Answer::NoData
        );
        assert_eq!(
            ix.lookup("svc.cluster.local.", RecordType::A),
            Answer::NoData
        );
        assert_eq!(
            ix.lookup("nope.default.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        ix.set("svc/default/web", vec![]);
        assert_eq!(
            ix.lookup("web.default.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            ix.lookup("default.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            ix.lookup("svc.cluster.local.", RecordType::A),
            Answer::NoData
        );
    }
}
