//! The order objects are applied in within a release, as Flux and kapp do:
//! namespaces and CRDs first, then RBAC, configuration, storage, services,
//! workloads, ingress and policies, webhooks last. Deletions run backwards.

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
    use super::rank;

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
