/**
 * The demo a fresh embedded database starts with: a table of personal data and two masking
 * transforms, one of which unmasks for members of the `auditor` role. The README walks through it.
 */
import type { SqlRunner } from './migrate.js';

const DEMO_SQL = `
CREATE ROLE auditor NOLOGIN;
CREATE ROLE alice LOGIN;
CREATE ROLE audrey LOGIN IN ROLE auditor;
CREATE TABLE public.customers (
  id integer PRIMARY KEY,
  name text NOT NULL,
  email text,
  phone text,
  iban text,
  birth_date date
);
INSERT INTO public.customers VALUES
  (1, 'Ada Lovelace',    'ada@analytical.example',   '+44 20 7946 0018', 'GB82WEST12345698765432', '1815-12-10'),
  (2, 'Alan Turing',     'alan@bletchley.example',   '+44 1908 640404',  'GB33BUKB20201555555555', '1912-06-23'),
  (3, 'Grace Hopper',    'grace@cobol.example',      '+1 202 555 0143',  'US64SVBKUS6S3300958879', '1906-12-09'),
  (4, 'Edsger Dijkstra', 'edsger@goto.example',      '+31 20 555 0199',  'NL91ABNA0417164300',     '1930-05-11'),
  (5, 'Barbara Liskov',  NULL,                       '+1 617 555 0110',  'US12BOFA0000123456789',  '1939-11-07'),
  (6, 'Kristen Nygaard', 'kristen@simula.example',   NULL,               NULL,                     '1926-08-27');
GRANT SELECT ON public.customers TO alice, audrey;
`;

export async function seedDemo(db: SqlRunner): Promise<void> {
  await db.exec(DEMO_SQL);
  await db.query(
    "SELECT provenance.register_transform('mask_email', 'public.customers', ARRAY['email'], $1, $2::jsonb)",
    [
      "(email, params) => email === null ? null : email.slice(0, params.keep) + '***@' + email.split('@')[1]",
      JSON.stringify({ keep: 2 }),
    ],
  );
  await db.query(
    "SELECT provenance.register_transform('mask_iban', 'public.customers', ARRAY['iban'], $1)",
    ["(iban, params, ctx) => iban === null || ctx.roles.includes('auditor') ? iban : iban.slice(0, 4) + ' **** ' + iban.slice(-4)"],
  );
}
