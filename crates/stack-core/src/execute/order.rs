//! The order objects are applied in within a release, as Flux and kapp do:
//! namespaces and CRDs first, then RBAC, configuration, storage, services,
//! workloads, ingress and policies, webhooks last. Deletions run backwards.

/// The stage a kind's objects are applied in: every object of a stage is
/// sent at once, and a stage starts when the one before it was answered.
/// Kinds that only refer to each other by name share a stage: roles and
/// their bindings; configuration, storage claims and services, which
/// workloads need and which need nothing of each other. Namespaces and
/// CRDs, classes, service accounts (before the token Secrets naming them),
/// workloads, ingress and policies, and webhooks keep stages of their own.
pub fn stage(kind: &str) -> u8 {
    match rank(kind) {
        5 => 4,
        7 | 8 => 6,
        rank => rank,
    }
}

/// Lower ranks apply first.
pub fn rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "PriorityClass" | "StorageClass" | "IngressClass" | "RuntimeClass" => 2,
        "ServiceAccount" => 3,
        "ClusterRole" | "Role" => 4,
        "ClusterRoleBinding" | "RoleBinding" => 5,
        "ConfigMap" | "Secret" | "LimitRange" | "ResourceQuota" => 6,
        "PersistentVolume" | "PersistentVolumeClaim" => 7,
        "Service" | "Endpoints" => 8,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Pod" | "Job" | "CronJob" => 9,
        "Ingress" | "HorizontalPodAutoscaler" | "PodDisruptionBudget" | "NetworkPolicy" => 10,
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" | "APIService" => 12,
        _ => 11,
    }
}

#[cfg(test)]
mod tests {
    use super::{rank, stage};

    #[test]
    fn kinds_that_need_nothing_of_each_other_share_a_stage() {
        assert_eq!(stage("Role"), stage("RoleBinding"));
        assert_eq!(stage("ConfigMap"), stage("Service"));
        assert_eq!(stage("Secret"), stage("PersistentVolumeClaim"));
        // Token Secrets name their ServiceAccount; workloads need their
        // configuration; ingress routes to what runs.
        assert!(stage("ServiceAccount") < stage("Secret"));
        assert!(stage("ClusterRoleBinding") < stage("ConfigMap"));
        assert!(stage("Service") < stage("Deployment"));
        assert!(stage("Deployment") < stage("Ingress"));
        assert!(stage("CustomResourceDefinition") < stage("StorageClass"));
    }

    #[test]
    fn namespaces_and_crds_first_webhooks_last() {
        let mut kinds = [
            "MutatingWebhookConfiguration",
            "Deployment",
            "Widget",
            "ConfigMap",
            "Namespace",
            "CustomResourceDefinition",
            "Service",
        ];
        kinds.sort_by_key(|k| rank(k));
        assert_eq!(
            kinds,
            [
                "Namespace",
                "CustomResourceDefinition",
                "ConfigMap",
                "Service",
                "Deployment",
                "Widget",
                "MutatingWebhookConfiguration"
            ]
        );
    }
}
