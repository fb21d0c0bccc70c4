//! Connections and catalog introspection.
