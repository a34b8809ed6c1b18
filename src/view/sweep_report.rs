//! `sweep --html` and `sweep --junit`: not built yet (issue 14, next
//! session). The module is declared so that the renderers of one run can
//! land first; it holds no code that pretends to be a report.
