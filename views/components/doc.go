// Package components holds the parts pages repeat: the CSRF field, a labelled form field with its
// error, a device row and a <time> that reads "5 minutes ago".
package components
