// Package wire is the 9P2000.L codec shared by the server (package p9srv)
// and the test client (test/p9wire): message type numbers, frame layout,
// field encodings, the typed requests the server decodes and the response
// bodies both sides read and write. It does no I/O beyond moving whole
// frames (ReadFrame, WriteFrame) and knows nothing of unions or servers.
//
// Integers are little-endian; a string is len[2] followed by its bytes; a
// frame is size[4] type[1] tag[2] body, size counting itself.
//
// Decoding never panics on short or hostile input: a Decoder reports
// ErrShortBody after the first read past the end, and DecodeRequest
// returns an error for a body too short for its type, an unknown type or
// a field out of range (more than MaxWalkNames names in a Twalk, a Twrite
// count beyond its body).
package wire
