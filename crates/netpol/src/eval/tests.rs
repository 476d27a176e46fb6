use super::*;
use serde_json::json;

fn pod(ns: &str, name: &str, ip: &str, labels: Value) -> Value {
    json!({"metadata": {"namespace": ns, "name": name, "labels": labels},
           "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
           "status": {"podIP": ip}})
}

fn ns(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}})
}

#[test]
fn unselected_pod_is_not_isolated() {
    let pol = json!({"metadata": {"namespace": "a"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}}}});
    let other = pod("a", "x", "10.0.0.2", json!({"app": "db"}));
    assert_eq!(isolation(&[pol], &other), (false, false));
}

#[test]
fn default_deny_ingress_isolates_without_rules() {
    let pol = json!({"metadata": {"namespace": "a"}, "spec": {"podSelector": {}}});
    let web = pod("a", "web", "10.0.0.1", json!({}));
    assert_eq!(isolation(std::slice::from_ref(&pol), &web), (true, false));
    assert!(rules_for(&[pol], &[], &[], &web, Direction::Ingress).is_empty());
}

#[test]
fn egress_rules_imply_egress_type() {
    let pol = json!({"metadata": {"namespace": "a"}, "spec": {"podSelector": {}, "egress": []}});
    let web = pod("a", "web", "10.0.0.1", json!({}));
    assert_eq!(isolation(&[pol], &web), (true, true));
}

#[test]
fn pod_selector_peers_stay_in_policy_namespace() {
    let pol = json!({"metadata": {"namespace": "a"}, "spec": {"podSelector": {},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "true"}}}]}]}});
    let web = pod("a", "web", "10.0.0.1", json!({}));
    let pods = vec![
        pod("a", "ok", "10.0.0.2", json!({"access": "true"})),
        pod("a", "no", "10.0.0.3", json!({})),
        pod("b", "other", "10.0.0.4", json!({"access": "true"})),
    ];
    let rules = rules_for(&[pol], &pods, &[], &web, Direction::Ingress);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].peers, vec![Peer::PodIp("10.0.0.2".into())]);
    assert_eq!(rules[0].ports, None);
}

#[test]
fn namespace_and_pod_selector_combined() {
    let pol = json!({"metadata": {"namespace": "a"}, "spec": {"podSelector": {},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}},
                               "podSelector": {"matchLabels": {"role": "client"}}}]}]}});
    let web = pod("a", "web", "10.0.0.1", json!({}));
    let pods = vec![
        pod("b", "c1", "10.0.0.2", json!({"role": "client"})),
        pod("b", "c2", "10.0.0.3", json!({})),
        pod("c", "c3", "10.0.0.4", json!({"role": "client"})),
    ];
    let nss = vec![ns("b", json!({"team": "x"})), ns("c", json!({}))];
    let rules = rules_for(&[pol], &pods, &nss, &web, Direction::Ingress);
    assert_eq!(rules[0].peers, vec![Peer::PodIp("10.0.0.2".into())]);
}

#[test]
fn ip_block_named_port_and_end_port() {
    let pol = json!({"metadata": {"namespace": "a"}, "spec": {"podSelector": {},
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                     "ports": [{"port": "http"}, {"port": 9000, "endPort": 9010, "protocol": "UDP"}]}]}});
    let web = pod("a", "web", "10.0.0.1", json!({}));
    let rules = rules_for(&[pol], &[], &[], &web, Direction::Ingress);
    assert_eq!(
        rules[0].peers,
        vec![Peer::Block {
            cidr: "10.0.0.0/8".into(),
            except: vec!["10.1.0.0/16".into()]
        }]
    );
    assert_eq!(
        rules[0].ports,
        Some(vec![
            PortRange {
                protocol: "TCP".into(),
                from: 8080,
                to: 8080
            },
            PortRange {
                protocol: "UDP".into(),
                from: 9000,
                to: 9010
            },
        ])
    );
}

#[test]
fn empty_from_allows_everyone() {
    let pol = json!({"metadata": {"namespace": "a"}, "spec": {"podSelector": {}, "ingress": [{}]}});
    let web = pod("a", "web", "10.0.0.1", json!({}));
    let rules = rules_for(&[pol], &[], &[], &web, Direction::Ingress);
    assert_eq!(rules[0].peers, vec![Peer::Any]);
}

#[test]
fn cached_peers_match_uncached_for_every_pod() {
    let pol = json!({"metadata": {"namespace": "a"}, "spec": {"podSelector": {},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}],
                     "ports": [{"port": "http"}]},
                    {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}});
    let pods = vec![
        pod("a", "web1", "10.0.0.1", json!({})),
        pod("a", "web2", "10.0.0.2", json!({})),
        pod("a", "c", "10.0.0.3", json!({"role": "client"})),
        pod("b", "m", "10.0.0.4", json!({})),
    ];
    let namespaces = vec![ns("a", json!({})), ns("b", json!({"team": "x"}))];
    let policies = [pol];
    let mut cache = PeerCache::default();
    // The three pods of the policy's namespace.
    for p in &pods[..3] {
        let cached = rules_for_cached(
            &policies,
            &pods,
            &namespaces,
            p,
            Direction::Ingress,
            &mut cache,
        );
        let fresh = rules_for(&policies, &pods, &namespaces, p, Direction::Ingress);
        assert_eq!(cached, fresh);
        assert_eq!(cached[0].peers, vec![Peer::PodIp("10.0.0.4".into())]);
        assert_eq!(cached[1].peers, vec![Peer::PodIp("10.0.0.3".into())]);
    }
}
