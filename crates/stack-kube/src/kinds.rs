//! Which kinds are cluster-scoped. A built-in table of the Kubernetes kinds,
//! extended by the CRDs a stack renders (and, against a cluster, by
//! discovery).

use std::collections::HashSet;

/// `(group, kind)` of the cluster-scoped built-in kinds.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("networking.k8s.io", "IngressClass"),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
];

/// The scope of every kind `stack` knows of.
#[derive(Debug, Default, Clone)]
pub struct Scopes {
    extra_cluster_scoped: HashSet<(String, String)>,
}

impl Scopes {
    /// Record a kind served cluster-wide (a CRD with `scope: Cluster`).
    pub fn add_cluster_scoped(&mut self, group: &str, kind: &str) {
        self.extra_cluster_scoped
            .insert((group.to_string(), kind.to_string()));
    }

    pub fn is_cluster_scoped(&self, api_version: &str, kind: &str) -> bool {
        let group = group_of(api_version);
        CLUSTER_SCOPED.contains(&(group, kind))
            || self
                .extra_cluster_scoped
                .contains(&(group.to_string(), kind.to_string()))
    }
}

/// `apps/v1` → `apps`; `v1` → the empty string (the core group).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_and_custom_scopes() {
        let mut scopes = Scopes::default();
        assert!(scopes.is_cluster_scoped("v1", "Namespace"));
        assert!(!scopes.is_cluster_scoped("apps/v1", "Deployment"));
        assert!(!scopes.is_cluster_scoped("example.com/v1", "Widget"));
        scopes.add_cluster_scoped("example.com", "Widget");
        assert!(scopes.is_cluster_scoped("example.com/v1", "Widget"));
    }
}
