//! A simulated vSphere vim25 SOAP endpoint (being built).
