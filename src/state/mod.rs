//! pgshift's own schema: applied migrations with checksums and the step
//! journal, created and upgraded by refinery from `migrations/`.
