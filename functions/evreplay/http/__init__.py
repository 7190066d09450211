"""HTTP plumbing shared by the API functions: bodies, answers, query parameters, the OpenAPI document."""
