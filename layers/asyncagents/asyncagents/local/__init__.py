"""The local stack: the whole application on moto, in one process, on 127.0.0.1.

It executes the real ``statemachines/`` definition with moto's Step Functions interpreter, routes
Lambda invocations to the in-process handlers named in ``template.yaml``, creates the table from the
template, and serves the HTTP API by turning requests into API Gateway HTTP API (v2) events.
Development and test tooling only: it is not part of the Lambda layer.
"""
