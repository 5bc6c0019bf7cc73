export { CertificateError } from './x509.ts';
export { ClusterTrust, RootCA, certDigest, splitPem, ROOT_LIFETIME_MS } from './root.ts';
export { issueNodeCert, verifyNodeCert, renewalTime, NODE_CERT_LIFETIME_MS, type NodeIdentity, type IssueOptions, type VerifyOptions } from './node-cert.ts';
export { JoinTokens, JoinTokenError, formatJoinToken, parseJoinToken, newTokenSecret, type ParsedJoinToken } from './join-token.ts';
export { admit, JoinRefusedError, type Admission, type JoinRequest } from './admission.ts';
export { caEpochOf, caEpochOfDigests, trustPemOf } from './epoch.ts';
export { localSigner, type NodeSigner, type SignRequest } from './signer.ts';
