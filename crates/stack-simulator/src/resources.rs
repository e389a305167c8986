//! The resource types the simulator serves: the built-in kinds people deploy
//! (plurals, scopes and versions as upstream) and the custom resources that
//! established CRDs add.

use std::collections::BTreeMap;

/// One served resource (a group, version and plural).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource (status is ignored on the main resource).
    pub status: bool,
    /// Has a `/scale` subresource.
    pub scale: bool,
}

impl ResourceType {
    /// One of the kinds the API server itself serves (not a CRD's).
    pub fn built_in(&self) -> bool {
        BUILT_IN
            .iter()
            .any(|entry| entry.0 == self.group && entry.3 == self.kind)
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `configmaps` for the core group: how errors name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The verbs discovery lists for this type.
    pub fn verbs(&self) -> Vec<&'static str> {
        let mut verbs = vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        if self.kind == "Namespace" {
            verbs.retain(|verb| *verb != "deletecollection");
        }
        if !self.built_in() {
            // The order a real server lists a custom resource's verbs in.
            verbs = vec![
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ];
        }
        verbs
    }

    /// The key objects of this type are stored under.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }
}

/// `(group, version, plural, kind, namespaced, short names, has status, in the "all" category)`.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
    bool,
);

#[rustfmt::skip]
const BUILT_IN: &[Row] = &[
    ("", "v1", "namespaces", "Namespace", false, &["ns"], true, false),
    ("", "v1", "configmaps", "ConfigMap", true, &["cm"], false, false),
    ("", "v1", "secrets", "Secret", true, &[], false, false),
    ("", "v1", "services", "Service", true, &["svc"], true, true),
    ("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"], false, false),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, &["pvc"], true, false),
    ("", "v1", "persistentvolumes", "PersistentVolume", false, &["pv"], true, false),
    ("", "v1", "pods", "Pod", true, &["po"], true, true),
    ("", "v1", "nodes", "Node", false, &["no"], true, false),
    ("", "v1", "events", "Event", true, &["ev"], false, false),
    ("", "v1", "endpoints", "Endpoints", true, &["ep"], false, false),
    ("", "v1", "limitranges", "LimitRange", true, &["limits"], false, false),
    ("", "v1", "resourcequotas", "ResourceQuota", true, &["quota"], true, false),
    ("apps", "v1", "deployments", "Deployment", true, &["deploy"], true, true),
    ("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"], true, true),
    ("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"], true, true),
    ("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], true, true),
    ("apps", "v1", "controllerrevisions", "ControllerRevision", true, &[], false, false),
    ("batch", "v1", "jobs", "Job", true, &[], true, true),
    ("batch", "v1", "cronjobs", "CronJob", true, &["cj"], true, true),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", true, &["ing"], true, false),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, &["netpol"], false, false),
    ("networking.k8s.io", "v1", "ingressclasses", "IngressClass", false, &[], false, false),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", true, &[], false, false),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, &[], false, false),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, &[], false, false),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, &[], false, false),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"], true, false),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, &["hpa"], true, true),
    ("coordination.k8s.io", "v1", "leases", "Lease", true, &[], false, false),
    ("storage.k8s.io", "v1", "storageclasses", "StorageClass", false, &["sc"], false, false),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false, &["crd", "crds"], true, false),
];

/// All resource types being served, in a stable order.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        let types = BUILT_IN
            .iter()
            .map(
                |&(group, version, plural, kind, namespaced, short, status, all)| ResourceType {
                    group: group.into(),
                    version: version.into(),
                    plural: plural.into(),
                    singular: kind.to_lowercase(),
                    kind: kind.into(),
                    namespaced,
                    short_names: short.iter().map(|s| (*s).to_string()).collect(),
                    categories: if all { vec!["all".into()] } else { Vec::new() },
                    status,
                    scale: matches!(kind, "Deployment" | "ReplicaSet" | "StatefulSet"),
                },
            )
            .collect();
        Self { types }
    }
}

impl Registry {
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
    }

    pub fn by_key(&self, key: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.key() == key)
    }

    /// Groups with their versions (preferred first), core group excluded.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            let versions = groups.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        groups
    }

    /// Serve (or stop serving) the versions of an established CRD.
    pub fn set_custom(&mut self, crd_name: &str, types: Vec<ResourceType>) {
        let group = crd_name
            .split_once('.')
            .map_or("", |(_, group)| group)
            .to_string();
        let plural = crd_name
            .split_once('.')
            .map_or(crd_name, |(plural, _)| plural)
            .to_string();
        self.types
            .retain(|t| !(t.group == group && t.plural == plural));
        self.types.extend(types);
    }
}

/// The resource types a CRD object declares (served versions only).
pub fn from_crd(crd: &serde_json::Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
    let Some(versions) = spec["versions"].as_array() else {
        return Vec::new();
    };
    versions
        .iter()
        .filter(|version| version["served"].as_bool().unwrap_or(true))
        .map(|version| ResourceType {
            group: text(&spec["group"]),
            version: text(&version["name"]),
            plural: text(&names["plural"]),
            singular: names["singular"]
                .as_str()
                .map_or_else(|| text(&names["kind"]).to_lowercase(), str::to_string),
            kind: text(&names["kind"]),
            namespaced: spec["scope"] != "Cluster",
            short_names: names["shortNames"]
                .as_array()
                .map(|names| names.iter().map(text).collect())
                .unwrap_or_default(),
            categories: names["categories"]
                .as_array()
                .map(|names| names.iter().map(text).collect())
                .unwrap_or_default(),
            status: version["subresources"]["status"].is_object(),
            scale: version["subresources"]["scale"].is_object(),
        })
        .collect()
}
