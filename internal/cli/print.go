package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// PrintJSON writes v to w as JSON indented by two spaces, and a newline.
func PrintJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// PrintJSONOrTable writes rows to w as a JSON array (PrintJSON) when asJSON,
// or else as a table: the tab-separated header, then one line a row, format
// applied to the row's fields.
func PrintJSONOrTable[T any](w io.Writer, asJSON bool, rows []T, header, format string, fields func(T) []any) error {
	if asJSON {
		return PrintJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintf(tw, format, fields(r)...)
	}
	return tw.Flush()
}
