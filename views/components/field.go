package components

// FieldProps describe one labelled input and its error.
type FieldProps struct {
	ID           string // the input's id; defaults to "field-" + Name (set it when a page repeats a field)
	Name         string
	Label        string
	Type         string // "text" when empty; a "password" field never renders its Value
	Value        string
	Error        string // shown right after the input and linked to it with aria-describedby
	Hint         string // shown between the label and the input, also linked with aria-describedby
	Autocomplete string
	Required     bool
	MaxLength    int // no maxlength attribute when 0
}

func (f FieldProps) id() string {
	if f.ID != "" {
		return f.ID
	}
	return "field-" + f.Name
}

func (f FieldProps) inputType() string {
	if f.Type == "" {
		return "text"
	}
	return f.Type
}

func (f FieldProps) errorID() string { return f.id() + "-error" }
func (f FieldProps) hintID() string  { return f.id() + "-hint" }

// describedBy lists the ids of the hint and the error, in reading order.
func (f FieldProps) describedBy() string {
	switch {
	case f.Hint != "" && f.Error != "":
		return f.hintID() + " " + f.errorID()
	case f.Hint != "":
		return f.hintID()
	case f.Error != "":
		return f.errorID()
	}
	return ""
}
