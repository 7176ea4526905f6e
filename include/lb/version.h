/*
 * The lbcp release every binary and liblbclient were built from:
 * "0.1.0" or "0.1.0 (git a74bc55)" when the build had git describe.
 * Thread-safety: returns a static string; safe from any thread.
 */
#ifndef LB_VERSION_H
#define LB_VERSION_H

const char *lb_version(void);

#endif
