/*
 * export.h - marks the functions that form libcebox's public ABI.
 * Everything else is built with hidden visibility.
 */
#ifndef CEBOX_EXPORT_H
#define CEBOX_EXPORT_H

#define CEBOX_EXPORT __attribute__((visibility("default")))

#endif
