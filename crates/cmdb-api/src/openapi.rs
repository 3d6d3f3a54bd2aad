//! The OpenAPI 3 document of the routes, generated from the same table the router is
//! checked against.

use serde_json::{json, Map, Value};

/// One route: method, path (OpenAPI syntax), summary, query parameters, success status.
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    summary: &'static str,
    query: &'static [(&'static str, &'static str, &'static str)],
    body: Option<&'static str>,
    ok: (&'static str, &'static str),
    auth: bool,
}

/// Every route of the router.
pub(crate) const ROUTES: &[Route] = &[
    Route { method: "get", path: "/healthz", summary: "Liveness check", query: &[], body: None, ok: ("200", "Health"), auth: false },
    Route { method: "get", path: "/openapi.json", summary: "This document", query: &[], body: None, ok: ("200", "Document"), auth: true },
    Route { method: "post", path: "/secrets", summary: "Store a cloud credential (the API secret is encrypted)", query: &[], body: Some("NewSecret"), ok: ("201", "MaskedSecret"), auth: true },
    Route { method: "get", path: "/secrets", summary: "List secrets, masked", query: &[("page_size", "integer", "1 to 1000, default 20"), ("page_number", "integer", "from 1"), ("keywords", "string", "substring of description, api key, vendor or id")], body: None, ok: ("200", "SecretList"), auth: true },
    Route { method: "get", path: "/secrets/{id}", summary: "One secret, masked", query: &[], body: None, ok: ("200", "MaskedSecret"), auth: true },
    Route { method: "delete", path: "/secrets/{id}", summary: "Delete a secret", query: &[], body: None, ok: ("204", ""), auth: true },
    Route { method: "post", path: "/secrets/{id}/sync", summary: "Sync one region of the secret's cloud into the store (JSON body or the same fields as query parameters)", query: &[("region", "string", "required unless vSphere"), ("resource_type", "string", "host (default)"), ("wait", "boolean", "default true; false answers 202 with a task id"), ("details", "string", "all (default), failed, none; at most 10,000 entries by default (SyncOptions::max_details), details_truncated past it"), ("force_release", "boolean", "release even when the guard refuses")], body: Some("SyncParams"), ok: ("200", "SyncResponse"), auth: true },
    Route { method: "get", path: "/tasks", summary: "Sync tasks, most recent first", query: &[("secret_id", "string", "only this secret's tasks"), ("page_size", "integer", "1 to 1000, default 20"), ("page_number", "integer", "from 1")], body: None, ok: ("200", "TaskList"), auth: true },
    Route { method: "get", path: "/tasks/{id}", summary: "One sync task with live progress and, when done, its result", query: &[], body: None, ok: ("200", "Task"), auth: true },
    Route { method: "get", path: "/hosts", summary: "Stored hosts", query: &[("vendor", "string", "aliyun, tencent, huawei, vsphere"), ("region", "string", ""), ("secret_id", "string", ""), ("status", "string", "RUNNING, STOPPED, ..."), ("keywords", "string", "name, instance id or IP"), ("released", "boolean", "true: released only; false: active only"), ("sort", "string", "instance_id (default), name, last_seen_desc"), ("page_size", "integer", "1 to 1000, default 20"), ("page_number", "integer", "from 1")], body: None, ok: ("200", "HostList"), auth: true },
    Route { method: "get", path: "/hosts/{vendor}/{instance_id}", summary: "One stored host", query: &[], body: None, ok: ("200", "StoredHost"), auth: true },
];

fn schemas() -> Value {
    json!({
        "Error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "description": "error kind: invalid_input, not_found, unauthenticated, permission_denied, rate_limited, timeout, unavailable, vendor, decode, store, crypto, conflict"},
            "message": {"type": "string"},
            "request_id": {"type": "string", "description": "500 only: the id under which the details were logged"}}},
        "ErrorReport": {"type": "object", "properties": {
            "kind": {"type": "string"},
            "message": {"type": "string", "description": "for a store or server failure: only 'internal error (request id <id>)'"},
            "vendor": {"type": "string", "nullable": true}, "code": {"type": "string", "nullable": true},
            "http_status": {"type": "integer", "nullable": true},
            "request_id": {"type": "string", "nullable": true, "description": "the vendor's request id, or the id under which a store or server failure was logged"}}},
        "Health": {"type": "object", "properties": {"status": {"type": "string"}}},
        "Document": {"type": "object"},
        "NewSecret": {"type": "object", "additionalProperties": false,
            "required": ["vendor", "description", "api_key", "api_secret", "allowed_regions"],
            "properties": {
                "vendor": {"type": "string", "enum": ["aliyun", "tencent", "huawei", "vsphere"]},
                "description": {"type": "string", "maxLength": 100},
                "api_key": {"type": "string", "maxLength": 100},
                "api_secret": {"type": "string", "maxLength": 100, "writeOnly": true},
                "allowed_regions": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "request_rate": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 5},
                "address": {"type": "string", "format": "uri", "description": "endpoint override; required for vsphere"}}},
        "MaskedSecret": {"type": "object", "properties": {
            "id": {"type": "string"}, "vendor": {"type": "string"}, "description": {"type": "string"},
            "api_key": {"type": "string", "description": "first and last 4 characters"},
            "api_secret": {"type": "string", "description": "always ******"},
            "allowed_regions": {"type": "array", "items": {"type": "string"}},
            "request_rate": {"type": "integer"}, "address": {"type": "string", "nullable": true},
            "created_at": {"type": "string", "format": "date-time"}}},
        "SecretList": {"type": "object", "properties": {"total": {"type": "integer"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/MaskedSecret"}}}},
        "SyncParams": {"type": "object", "additionalProperties": false, "properties": {
            "region": {"type": "string"}, "resource_type": {"type": "string", "enum": ["host", "rds"]},
            "wait": {"type": "boolean", "default": true},
            "details": {"type": "string", "enum": ["all", "failed", "none"], "default": "all", "description": "per-host details to answer, at most 10,000 by default (details_truncated past it)"},
            "force_release": {"type": "boolean", "default": false}}},
        "SyncDetail": {"type": "object", "properties": {"instance_id": {"type": "string"}, "name": {"type": "string"},
            "is_success": {"type": "boolean"}, "message": {"type": "string"}}},
        "SyncResponse": {"type": "object", "properties": {
            "total_succeed": {"type": "integer"}, "total_failed": {"type": "integer"},
            "details": {"type": "array", "items": {"$ref": "#/components/schemas/SyncDetail"}},
            "created": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
            "released": {"type": "integer"}, "release_confirmed": {"type": "integer"}, "release_found_alive": {"type": "integer"}, "details_truncated": {"type": "boolean", "description": "details were cut at the server's cap (10,000 by default)"}, "release_skipped": {"type": "string", "nullable": true},
            "complete": {"type": "boolean"}, "pages": {"type": "integer"}, "elapsed_ms": {"type": "integer"},
            "error": {"allOf": [{"$ref": "#/components/schemas/ErrorReport"}], "nullable": true}}},
        "Task": {"type": "object", "properties": {
            "id": {"type": "string"}, "secret_id": {"type": "string"}, "vendor": {"type": "string"}, "region": {"type": "string"},
            "state": {"type": "string", "enum": ["pending", "running", "succeeded", "partial", "failed"]},
            "progress": {"type": "object", "properties": {"state": {"type": "string"}, "pages": {"type": "integer"},
                "hosts_seen": {"type": "integer"}, "stored": {"type": "integer"}, "failed": {"type": "integer"},
                "expected_total": {"type": "integer", "nullable": true}}},
            "result": {"allOf": [{"$ref": "#/components/schemas/SyncResponse"}], "nullable": true, "description": "once finished: the counters and the failed details only"},
            "error": {"allOf": [{"$ref": "#/components/schemas/ErrorReport"}], "nullable": true},
            "created_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": "string", "format": "date-time", "nullable": true}}},
        "TaskList": {"type": "object", "properties": {"total": {"type": "integer"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}}},
        "StoredHost": {"type": "object", "properties": {
            "vendor": {"type": "string"}, "instance_id": {"type": "string"}, "secret_id": {"type": "string"},
            "region": {"type": "string"}, "zone": {"type": "string", "nullable": true},
            "name": {"type": "string"}, "status": {"type": "string"}, "raw_status": {"type": "string"},
            "cpu": {"type": "integer", "nullable": true}, "memory_mib": {"type": "integer", "nullable": true},
            "public_ips": {"type": "array", "items": {"type": "string"}},
            "private_ips": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "extra": {"type": "object"},
            "first_seen_at": {"type": "string", "format": "date-time"},
            "last_seen_at": {"type": "string", "format": "date-time"},
            "released_at": {"type": "string", "format": "date-time", "nullable": true}},
            "additionalProperties": true},
        "HostList": {"type": "object", "properties": {"total": {"type": "integer"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/StoredHost"}}}},
    })
}

/// The OpenAPI 3.0 document of every route.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(r.query.iter().map(|(name, ty, description)| {
            json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": ty}})
        }));
        let (status, schema) = r.ok;
        let ok = if schema.is_empty() {
            json!({"description": "done"})
        } else {
            json!({"description": "success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
        };
        let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        let mut responses = Map::new();
        responses.insert(status.to_owned(), ok);
        if r.path == "/secrets/{id}/sync" {
            responses.insert(
                "202".into(),
                json!({"description": "started in the background (wait=false)"}),
            );
            responses.insert(
                "429".into(),
                json!({"description": "every sync slot of the server is taken (or the vendor throttled): retry after Retry-After seconds",
                       "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        responses.insert("default".into(), error);
        let mut op = json!({
            "summary": r.summary,
            "operationId": format!("{}{}", r.method, r.path.replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "responses": responses,
        });
        if let Some(body) = r.body {
            op["requestBody"] = json!({"required": body != "SyncParams", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        if !r.auth {
            op["security"] = json!([]);
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    let schemas = schemas();
    json!({
        "openapi": "3.0.3",
        "info": {"title": "cmdb", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Sync cloud hosts into a CMDB: secrets, POST /secrets/{id}/sync, tasks, hosts."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    })
}
