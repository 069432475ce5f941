-- Live data of a small Eden deployment, with the problems real data has.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12)
INSERT INTO org_organisation (id, name, acronym, name_l10n)
SELECT i,
       CASE i WHEN 1 THEN 'Red Cross' WHEN 2 THEN 'Oxfam' WHEN 3 THEN 'Médecins Sans Frontières'
              ELSE 'Relief Organisation ' || i END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'RO' || i END,
       CASE i WHEN 1 THEN 'Cruz Roja' WHEN 3 THEN 'Artsen zonder Grenzen'
              ELSE CASE WHEN i % 4 = 0 THEN 'Organización ' || i END END
FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO org_office (id, organisation_id, name, phone, fax)
SELECT i, 1 + (i % 12), 'Office ' || i, '+94 11 ' || (2000000 + i * 37),
       CASE WHEN i % 5 = 0 THEN '+94 11 ' || (3000000 + i) END
FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
INSERT INTO pr_person (id, first_name, last_name, email)
SELECT i,
       CASE i % 7 WHEN 0 THEN 'Ada' WHEN 1 THEN 'Alan' WHEN 2 THEN 'Grace' WHEN 3 THEN 'Edsger'
                  WHEN 4 THEN 'Barbara' WHEN 5 THEN 'Tony' ELSE 'Frances' END,
       CASE WHEN i % 11 = 0 THEN NULL ELSE 'Person' || i END,
       -- Some people were registered twice with the same address.
       CASE WHEN i % 50 = 0 THEN 'volunteer' || (i - 1) || '@example.org'
            WHEN i % 13 = 0 THEN NULL
            ELSE 'volunteer' || i || '@example.org' END
FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 180)
INSERT INTO hrm_staff (id, person_id, office_id, start_date)
SELECT i, i, 1 + (i % 40), date('2019-01-01', '+' || (i * 5) || ' days') FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25)
INSERT INTO project_project (id, organisation_id, name, budget)
SELECT i, 1 + (i % 12), 'Project ' || i, 10000 * i FROM n;
