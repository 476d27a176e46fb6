//! ImageLocality: prefer nodes that already have the pod's images,
//! weighted by how widely each image is spread (so one node with a big
//! image does not attract every pod).

use crate::framework::{Ctx, CycleState, MAX_NODE_SCORE, Plugin};
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;

pub struct ImageLocality;

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// The name a node reports for an image reference: `nginx` is
/// `docker.io/library/nginx:latest`.
pub fn normalize(image: &str) -> String {
    let (name, has_tag) = match image.rsplit_once('/') {
        Some((_, last)) => (image.to_string(), last.contains(':') || last.contains('@')),
        None => (
            image.to_string(),
            image.contains(':') || image.contains('@'),
        ),
    };
    let mut name = if has_tag {
        name
    } else {
        format!("{name}:latest")
    };
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !has_registry {
        name = if name.contains('/') {
            format!("docker.io/{name}")
        } else {
            format!("docker.io/library/{name}")
        };
    }
    name
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }
    fn has_score(&self) -> bool {
        true
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, ctx: &Ctx) -> i64 {
        if node.images.is_empty() {
            return 0;
        }
        let total = ctx.cache.node_count().max(1) as f64;
        let mut sum = 0i64;
        for img in &pod.images {
            let n = normalize(img);
            let size = node.images.get(&n).or_else(|| node.images.get(img));
            if let Some(size) = size {
                let spread = ctx.cache.image_spread(&n).max(ctx.cache.image_spread(img)) as f64;
                sum += (*size as f64 * spread / total) as i64;
            }
        }
        let max = MAX_CONTAINER_THRESHOLD * pod.images.len().max(1) as i64;
        let sum = sum.clamp(MIN_THRESHOLD, max);
        MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::*;
    use serde_json::json;

    #[test]
    fn names_normalize_like_the_runtime_reports_them() {
        assert_eq!(normalize("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalize("me/app:1"), "docker.io/me/app:1");
        assert_eq!(normalize("localhost:5000/app"), "localhost:5000/app:latest");
    }

    #[test]
    fn node_with_the_image_scores_higher() {
        let img = json!({"status": {"allocatable": {"cpu": "1", "pods": "10"},
            "images": [{"names": ["docker.io/library/big:1"], "sizeBytes": 500 * MB}]}});
        let c = cache(vec![("a", img.clone()), ("b", json!({}))], vec![]);
        let ctx = Ctx { cache: &c };
        let s = CycleState::default();
        let p = pod(json!({"spec": {"containers": [{"name": "c", "image": "big:1"}]}}));
        let a = ImageLocality.score(&s, &p, c.node("a").unwrap(), &ctx);
        let b = ImageLocality.score(&s, &p, c.node("b").unwrap(), &ctx);
        assert!(a > b, "{a} > {b}");
    }
}
