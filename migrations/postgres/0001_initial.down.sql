-- Reverts 0001_initial. Children first, so no foreign key is violated while dropping; indexes go with their tables.
DROP TABLE IF EXISTS audit_events;

DROP TABLE IF EXISTS tokens;

DROP TABLE IF EXISTS projects;
