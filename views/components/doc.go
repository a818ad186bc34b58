// Package components holds the parts pages repeat: the CSRF field, a labelled form field with its
// error, the error summary of a refused form, a device row and a <time> that reads "5 minutes ago".
package components
