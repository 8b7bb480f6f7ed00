// Shared bits of the gRPC test fixture (server.mjs and client.mjs): loads echo.proto with
// @grpc/proto-loader and turns grpc-js Metadata into plain objects for assertions.
//
//   import { loadEchoPackage, metadataToObject, MAX_MESSAGE_BYTES } from './proto.mjs';
//   const { Echo, Admin } = loadEchoPackage();   // service client constructors (+ .service)
//   metadataToObject(md)                          // { 'x-a': 'v1, v2', 'x-b-bin': '<base64>' }
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

export const PROTO_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'echo.proto');
export const PACKAGE = 'portcullis.test.v1';
/** Max receive/send message length of the fixture's server and clients (16 MiB). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export const LOADER_OPTIONS = Object.freeze({
  keepCase: true, // delay_ms, fail_code stay snake_case
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true, // absent fields read as '', 0, empty Buffer, {}
  oneofs: true,
});

let cached;
/** { Echo, Admin }: grpc-js client constructors; Echo.service / Admin.service for addService. */
export function loadEchoPackage() {
  if (!cached) {
    const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def).portcullis.test.v1;
    cached = { Echo: pkg.Echo, Admin: pkg.Admin };
  }
  return cached;
}

/**
 * A grpc-js Metadata (or undefined) as a plain { key: string } object: repeated values joined
 * with ', ', binary (-bin) values base64-encoded. Keys are lower case, as on the wire.
 */
export function metadataToObject(md) {
  const out = {};
  if (!md) return out;
  for (const [key, values] of Object.entries(md.toJSON())) {
    out[key] = values.map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : String(v))).join(', ');
  }
  return out;
}
