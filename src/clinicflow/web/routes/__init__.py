"""Staff pages and the REST API, one module per page or resource."""
