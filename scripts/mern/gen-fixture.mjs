// Writes the importer test's users: passwords hashed the way the MERN app
// hashes them (bcryptjs, genSalt(10)), with bcryptjs 2.4.3 (the app's
// version, $2a$) and bcryptjs 3 ($2b$). Usage: node gen-fixture.mjs <out.json>
import { writeFileSync } from 'node:fs';
import bcrypt2 from 'bcryptjs';
import bcrypt3 from 'bcryptjs-3';

const users = [
  { name: 'Guest User', email: 'guest@example.com', password: '123456', lib: bcrypt2 },
  { name: 'Piyush', email: 'piyush@example.com', password: 'piyush-secret', lib: bcrypt2 },
  { name: 'Jane Doe', email: 'Jane.Doe@Example.com', password: 'jane password', lib: bcrypt3 },
  { name: 'John', email: 'john@example.com', password: 'john password', lib: bcrypt3 },
];

const out = users.map(({ name, email, password, lib }) => {
  const hash = lib.hashSync(password, lib.genSaltSync(10));
  if (!lib.compareSync(password, hash)) throw new Error('bcryptjs does not verify its own hash');
  return { name, email, password, hash };
});
writeFileSync(process.argv[2], JSON.stringify(out, null, 2) + '\n');
console.log(`wrote ${out.length} users to ${process.argv[2]}: ${out.map((u) => u.hash.slice(0, 7)).join(' ')}`);
