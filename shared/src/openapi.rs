//! The OpenAPI 3 document of every route of every function, generated from the code.
