/*
 * err.h - the one error type of mote.
 *
 * Every function that can fail returns enum mote_err: 0 (MOTE_OK) is success,
 * anything else is an error. Results travel through out-parameters. MQTT
 * reason codes are protocol data, not errors; they never appear here.
 *
 * Threading: stateless, safe from any thread.
 */
#ifndef MOTE_BASE_ERR_H
#define MOTE_BASE_ERR_H

enum mote_err {
	MOTE_OK = 0,
	MOTE_ENOMEM,     /* allocation failed */
	MOTE_EINVAL,     /* invalid argument from the caller (a bug or bad config) */
	MOTE_EAGAIN,     /* not enough input yet / would block: try again later */
	MOTE_ENOSPC,     /* the caller's buffer is too small */
	MOTE_EMALFORMED, /* input violates the wire format */
	MOTE_EPROTO,     /* well-formed input that breaks a protocol rule */
	MOTE_ETOOBIG,    /* input exceeds a configured or protocol limit */
	MOTE_EIO,        /* an operating-system call failed (errno has details) */
	MOTE_ECLOSED,    /* the peer closed the connection */
	MOTE_ETIMEDOUT,  /* a deadline passed */
	MOTE_ENOTFOUND,  /* the looked-up thing does not exist */
	MOTE_EEXIST,     /* the thing to create already exists */
	MOTE_EDENIED,    /* not authorized */
	MOTE_EFULL,      /* a bounded queue or table is full */
	MOTE_ERR_COUNT_  /* number of codes; not an error */
};

/* A static, human-readable description; never NULL. */
const char *mote_strerror(enum mote_err err);

#endif
