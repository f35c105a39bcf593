"""Small scenario files shared by the simulator tests."""

SMALL = """\
name: small
seed: 5
horizon: 4h
fleet:
  pools:
    - {name: a100, product: NVIDIA-A100-SXM4-80GB, gpus_per_node: 8, nodes: 2, price_per_gpu_hour: "3.50"}
queues:
  documents:
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ResourceFlavor
      metadata: {name: a100}
      spec: {nodeLabels: {budcore.io/pool: a100}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: team}
      spec:
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: 16}
                  - {name: cpu, nominalQuota: 256}
                  - {name: memory, nominalQuota: 2Ti}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: LocalQueue
      metadata: {name: main, namespace: team}
      spec: {clusterQueue: team}
workload:
  generators:
    classes:
      - name: train
        tenant: team
        local_queue: main
        arrivals: {kind: poisson, rate: 20, per: 1h}
        runtime: {kind: exponential, mean: 30m}
        gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}
"""
