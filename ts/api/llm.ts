/** An OpenAI-compatible chat client with JSON answers. */
export {
  ChatClient, extractJson, imageDataUrl, type ChatMessage, type ChatClientOptions, type ChatResult,
  type JsonResult,
} from '../llm/chat.js';
