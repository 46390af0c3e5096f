"""The residents' pages: report by link or QR code, follow and rate a case, acknowledge a
notice, from any phone browser (README: Residents in ordinary WeChat groups)."""
