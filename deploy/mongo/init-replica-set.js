// Initiate the replica set rs0 once and create the platform's read-only user (mongosh SCRIPT).
// Run by docker-compose.yml's mongo-init and deploy/kubernetes/20-mongodb.yaml's mongo-init Job against the
// first member. Environment:
//   MONGO_MEMBERS          host:port of each member, comma-separated, the first one preferred as primary;
//                          "=arbiter" after one makes it an arbiter (e.g. mongo1:27017,mongo-arbiter:27017=arbiter)
//   MONGO_ROOT_USERNAME    the root user every member's image created at its first start
//   MONGO_ROOT_PASSWORD    (MONGO_INITDB_ROOT_USERNAME / _PASSWORD of the mongo image)
//   MONGO_READER_PASSWORD  password of the user "reader" (readAnyDatabase): the runner reads candles with it
// Re-running it is safe: an initiated set is left as it is and the reader's password is reset to the given one.
function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: expected it in the environment of mongo-init (see this file's header)`);
  }
  return value;
}

// Every variable is read before anything changes, so a missing one stops the script at once.
const rootUser = required("MONGO_ROOT_USERNAME");
const rootPassword = required("MONGO_ROOT_PASSWORD");
const readerPassword = required("MONGO_READER_PASSWORD");
const members = required("MONGO_MEMBERS").split(",").map((spec, index) => {
  const [host, role] = spec.trim().split("=");
  if (role === "arbiter") {
    return { _id: index, host: host, arbiterOnly: true };
  }
  return { _id: index, host: host, priority: index === 0 ? 2 : 1 };
});
const admin = db.getSiblingDB("admin");
admin.auth(rootUser, rootPassword);

try {
  rs.status();
  print("rs0 already initiated");
} catch (e) {
  if (e.codeName !== "NotYetInitialized") {
    throw e;
  }
  rs.initiate({ _id: "rs0", members: members });
  print(`rs0 initiated with ${members.map((m) => m.host).join(", ")}`);
}
while (!db.hello().isWritablePrimary) {
  sleep(500);
}
print("rs0 primary ready");
// Majority writes by default, also with an arbiter (whose implicit default would be w: 1).
const concern = admin.runCommand({ setDefaultRWConcern: 1, defaultWriteConcern: { w: "majority" } });
if (concern.ok !== 1) {
  throw new Error(`setDefaultRWConcern failed: ${JSON.stringify(concern)}`);
}

const reader = { pwd: readerPassword, roles: [{ role: "readAnyDatabase", db: "admin" }] };
if (admin.getUser("reader") === null) {
  admin.createUser({ user: "reader", ...reader });
  print("created user reader (readAnyDatabase)");
} else {
  admin.updateUser("reader", reader);
  print("user reader exists: password and roles reset");
}
