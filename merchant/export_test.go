package merchant

// ParseCatalogFile exposes the catalog file decoder to the fuzz target.
var ParseCatalogFile = parseCatalogFile
