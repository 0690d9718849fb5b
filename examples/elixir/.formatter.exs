[
  inputs: ["{mix,.formatter}.exs", "{lib,mix,test}/**/*.{ex,exs}"],
  line_length: 100
]
