//! The hickory request handler: the cluster zone and reverse names of
//! cluster addresses from the index, everything else forwarded.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use parking_lot::RwLock;

use crate::index::{Answer, Index};

/// TTL of every cluster record (CoreDNS' default for the kubernetes plugin).
pub const TTL: u32 = 5;

pub struct Handler {
    pub index: Arc<RwLock<Index>>,
    pub upstreams: Vec<SocketAddr>,
    soa: Record,
}

impl Handler {
    pub fn new(index: Arc<RwLock<Index>>, upstreams: Vec<SocketAddr>) -> Handler {
        let zone = index.read().zone().to_string();
        let origin = Name::from_ascii(&zone).unwrap_or_else(|_| Name::root());
        let mname = Name::from_ascii(format!("ns.dns.{zone}")).unwrap_or_else(|_| origin.clone());
        let rname =
            Name::from_ascii(format!("hostmaster.{zone}")).unwrap_or_else(|_| origin.clone());
        let soa = Record::from_rdata(
            origin,
            TTL,
            RData::SOA(SOA::new(mname, rname, 1, 7200, 1800, 86400, TTL)),
        );
        Handler {
            index,
            upstreams,
            soa,
        }
    }
}

fn failed(request: &Request, code: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = code;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let Some(query) = request.queries.queries().first() else {
            return failed(request, ResponseCode::FormErr);
        };
        let qname = query.name().to_string().to_ascii_lowercase();
        let qname = if qname.ends_with('.') {
            qname
        } else {
            format!("{qname}.")
        };
        let qtype = query.query_type();
        let edns = request.edns.as_ref().map(|_| {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            e
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;

        let local = {
            let ix = self.index.read();
            if ix.in_zone(&qname) || (qname.ends_with(".arpa.") && ix.knows(&qname)) {
                Some(ix.lookup(&qname, qtype))
            } else {
                None
            }
        };
        match local {
            Some(answer) => {
                metadata.authoritative = true;
                let owner = query.name().into();
                let (answers, soa): (Vec<Record>, Vec<Record>) = match answer {
                    Answer::Records(rs) => (
                        rs.into_iter()
                            .map(|r| Record::from_rdata(Name::clone(&owner), TTL, r))
                            .collect(),
                        Vec::new(),
                    ),
                    Answer::NoData => (Vec::new(), vec![self.soa.clone()]),
                    Answer::NxDomain => {
                        metadata.response_code = ResponseCode::NXDomain;
                        (Vec::new(), vec![self.soa.clone()])
                    }
                };
                let soa = if qtype == RecordType::SOA
                    && answers.is_empty()
                    && qname == self.index.read().zone()
                {
                    // The apex's own SOA.
                    return send(
                        &mut response,
                        builder.build(metadata, [&self.soa], [], [], []),
                        request,
                    )
                    .await;
                } else {
                    soa
                };
                send(
                    &mut response,
                    builder.build(metadata, answers.iter(), [], soa.iter(), []),
                    request,
                )
                .await
            }
            None => {
                let Some(up) = crate::forward::forward(
                    &self.upstreams,
                    request.as_slice(),
                    request.metadata.id,
                )
                .await
                else {
                    let resp = builder.error_msg(&request.metadata, ResponseCode::ServFail);
                    return send(&mut response, resp, request).await;
                };
                metadata.response_code = up.metadata.response_code;
                metadata.authoritative = up.metadata.authoritative;
                send(
                    &mut response,
                    builder.build(
                        metadata,
                        up.answers.iter(),
                        up.authorities.iter(),
                        [],
                        up.additionals.iter(),
                    ),
                    request,
                )
                .await
            }
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    msg: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match response.send_response(msg).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!("dns: cannot send response: {e}");
            failed(request, ResponseCode::ServFail)
        }
    }
}
