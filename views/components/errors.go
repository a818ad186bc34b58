package components

// FieldError is one line of an error summary: the field it is about and what is wrong with it.
type FieldError struct {
	ID      string // the input's id: the line links to "#" + ID
	Label   string // the input's label, said before the message so the line names its field; may be empty
	Message string
}

// text is the line as the summary shows it: "Password: Use at least 10 characters."
func (e FieldError) text() string {
	if e.Label == "" {
		return e.Message
	}
	return e.Label + ": " + e.Message
}

// ErrorsOf lists the errors of the fields that have one, in the order given, which is the form's
// order: the summary of a form built from these FieldProps.
func ErrorsOf(fields ...FieldProps) []FieldError {
	var out []FieldError
	for _, f := range fields {
		if f.Error != "" {
			out = append(out, FieldError{ID: f.id(), Label: f.Label, Message: f.Error})
		}
	}
	return out
}
